//! The bounded read-modify-CAS-write loop, written sans-IO: a transaction
//! says which hostcall it needs next ([`Step`]) and is fed the host's answer.
//! `run` drives it over a [`Store`]; tests drive several at once in any
//! interleaving to prove that no update is lost.

use super::codec;
use super::config::BreakerConfig;
use super::report::Report;
use super::state::{plan_admit, plan_record, Lease, Outcome, Plan, State, Verdict};
use super::store::{SetError, Store, StoreError, CREATE_CAS};

/// Retries after a CAS mismatch before giving up (`cas_exhausted`). Each
/// retry costs a get and a set; eight keep the worst case bounded (a request
/// never waits on a lock, it only loses a race) while making exhaustion rare
/// unless a slot is hammered by many workers at once.
pub const MAX_CAS_RETRIES: u32 = 8;

/// A state as read from shared data, with the CAS it was read at (`None`:
/// the key did not exist).
pub(crate) type Read = (State, Option<u32>);

/// One kind of update: how to plan it from a state, and what to answer when
/// the update cannot be made (retries exhausted, host error).
pub(crate) trait Op {
    type Out;
    fn plan(&self, state: &State) -> Plan<Self::Out>;
    fn fallback(&self) -> Self::Out;
}

/// Admission at a given time.
pub(crate) struct AdmitOp<'a> {
    pub cfg: &'a BreakerConfig,
    pub now_ms: u64,
}

impl Op for AdmitOp<'_> {
    type Out = Verdict;
    fn plan(&self, state: &State) -> Plan<Verdict> {
        plan_admit(self.cfg, state, self.now_ms)
    }
    /// When the breaker cannot be consulted or updated, serve the request
    /// (the issue: "skip the update and serve the request normally").
    fn fallback(&self) -> Verdict {
        Verdict::Allow { lease: None }
    }
}

/// Recording one outcome at a given time.
pub(crate) struct RecordOp<'a> {
    pub cfg: &'a BreakerConfig,
    pub now_ms: u64,
    pub lease: Option<Lease>,
    pub outcome: Outcome,
}

impl Op for RecordOp<'_> {
    type Out = ();
    fn plan(&self, state: &State) -> Plan<()> {
        plan_record(self.cfg, state, self.now_ms, self.lease, self.outcome)
    }
    fn fallback(&self) {}
}

/// How a transaction ended.
#[derive(Debug)]
pub(crate) struct Finish<T> {
    pub out: T,
    pub report: Report,
    /// The state as read, when the transaction ended without writing and
    /// without falling back: still valid for an optimistic CAS later.
    pub unchanged: Option<Read>,
}

/// The next hostcall a transaction needs, or its end.
#[derive(Debug)]
pub(crate) enum Step<T> {
    Get,
    Set { value: Vec<u8>, cas: Option<u32> },
    Done(Finish<T>),
}

/// A read-modify-write in progress.
pub(crate) struct Txn<O: Op> {
    op: O,
    report: Report,
    pending: Option<Plan<O::Out>>,
}

impl<O: Op> Txn<O> {
    pub fn new(op: O) -> Self {
        Self {
            op,
            report: Report::default(),
            pending: None,
        }
    }

    /// First step: plan straight from `known` (a snapshot read earlier, so
    /// the optimistic set needs no get), or read first.
    pub fn start(&mut self, known: Option<Read>) -> Step<O::Out> {
        match known {
            Some(read) => self.plan(read),
            None => Step::Get,
        }
    }

    /// Feeds the answer to a [`Step::Get`].
    pub fn on_get(
        &mut self,
        answer: Result<(Option<Vec<u8>>, Option<u32>), StoreError>,
    ) -> Step<O::Out> {
        match answer {
            Ok((value, cas)) => {
                let state = match value.as_deref() {
                    None | Some([]) => State::default(),
                    Some(bytes) => codec::decode(bytes).unwrap_or_else(|| {
                        self.report.discarded_invalid_state = true;
                        State::default()
                    }),
                };
                self.plan((state, cas))
            }
            Err(e) => self.fall_back(Some(e)),
        }
    }

    /// Feeds the answer to a [`Step::Set`].
    pub fn on_set(&mut self, answer: Result<(), SetError>) -> Step<O::Out> {
        match answer {
            Ok(()) => match self.pending.take() {
                Some(plan) => {
                    self.report.events.extend(plan.events);
                    self.done(plan.out, None)
                }
                // A set answer without a set asked for: a driver bug; end
                // safely rather than panic.
                None => self.fall_back(None),
            },
            Err(SetError::CasMismatch) => {
                self.pending = None;
                if self.report.cas_retries >= MAX_CAS_RETRIES {
                    self.report.cas_exhausted = true;
                    self.fall_back(None)
                } else {
                    self.report.cas_retries += 1;
                    Step::Get
                }
            }
            Err(SetError::Host(e)) => {
                self.pending = None;
                self.fall_back(Some(e))
            }
        }
    }

    fn plan(&mut self, read: Read) -> Step<O::Out> {
        let mut plan = self.op.plan(&read.0);
        match plan.write.take() {
            None => {
                self.report.events.append(&mut plan.events);
                self.done(plan.out, Some(read))
            }
            Some(next) => {
                let value = codec::encode(&next);
                // A missing key is created with CREATE_CAS, never with an
                // unconditional write (see CREATE_CAS for the race).
                let cas = Some(read.1.unwrap_or(CREATE_CAS));
                self.pending = Some(plan);
                Step::Set { value, cas }
            }
        }
    }

    fn fall_back(&mut self, error: Option<StoreError>) -> Step<O::Out> {
        if error.is_some() {
            self.report.store_error = error;
        }
        let out = self.op.fallback();
        self.done(out, None)
    }

    fn done(&mut self, out: O::Out, unchanged: Option<Read>) -> Step<O::Out> {
        Step::Done(Finish {
            out,
            report: std::mem::take(&mut self.report),
            unchanged,
        })
    }
}

/// Runs a transaction to its end against a store. Terminates: every set is
/// either final or a mismatch, and mismatches are bounded.
pub(crate) fn run<O: Op, S: Store + ?Sized>(
    store: &S,
    key: &str,
    op: O,
    known: Option<Read>,
) -> Finish<O::Out> {
    let mut txn = Txn::new(op);
    let mut step = txn.start(known);
    loop {
        step = match step {
            Step::Get => txn.on_get(store.get(key)),
            Step::Set { value, cas } => txn.on_set(store.set(key, &value, cas)),
            Step::Done(finish) => return finish,
        };
    }
}
