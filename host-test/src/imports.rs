//! The functions the host gives the guest: `env.proxy_*` (ABI 0.2.1) and the
//! WASI preview1 subset a Rust `wasm32-wasip1` module links.
//!
//! Every hostcall counts itself (by name) in the current request's record,
//! never panics on guest input, and answers with the status Envoy would.

use crate::abi::{self, filter_state_key, property_path, LogLevel, MetricKind, Status};
use crate::request::{LocalReply, LogLine, LogSource, ReplySource};
use crate::vm::{HostState, Phase};
use std::collections::HashSet;
use wasmtime::{Caller, ExternType, Linker, Module, Val, ValType};

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

/// Returns early from a hostcall with the status of an `Err`.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return Ok(s as i32),
        }
    };
}

fn ok() -> R {
    Ok(Status::Ok as i32)
}

fn status(s: Status) -> R {
    Ok(s as i32)
}

/// Counts a hostcall by name in the current request's record.
fn count(c: &mut C, name: &'static str) {
    c.data_mut().calls.add(name);
}

/// [`count`] for an import known only at link time (an unimplemented one).
fn count_named(c: &mut C, name: &str) {
    c.data_mut().calls.add_named(name);
}

fn span(ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let p = ptr as u32 as usize;
    let l = len as u32 as usize;
    Some(p..p.checked_add(l)?)
}

fn read(c: &C, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let m = c.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let r = span(ptr, len).ok_or(Status::InvalidMemoryAccess)?;
    m.data(c)
        .get(r)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

fn read_str(c: &C, ptr: i32, len: i32) -> Result<String, Status> {
    Ok(String::from_utf8_lossy(&read(c, ptr, len)?).into_owned())
}

fn write(c: &mut C, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let m = c.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let r = span(ptr, bytes.len() as i32).ok_or(Status::InvalidMemoryAccess)?;
    m.data_mut(c)
        .get_mut(r)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

fn write_u32(c: &mut C, ptr: i32, v: u32) -> Result<(), Status> {
    write(c, ptr, &v.to_le_bytes())
}

fn write_u64(c: &mut C, ptr: i32, v: u64) -> Result<(), Status> {
    write(c, ptr, &v.to_le_bytes())
}

/// Allocates `len` bytes in the guest with its exported allocator.
/// `Ok(Err(status))` is a polite failure; `Err` is a guest trap.
fn guest_alloc(c: &mut C, len: usize) -> wasmtime::Result<Result<i32, Status>> {
    let Some(alloc) = c.data().alloc.clone() else {
        return Ok(Err(Status::InternalFailure));
    };
    let p = alloc.call(&mut *c, len as u32)?;
    if p == 0 {
        return Ok(Err(Status::InvalidMemoryAccess));
    }
    Ok(Ok(p as i32))
}

/// Copies `bytes` into fresh guest memory and writes the pointer and size to
/// the return slots. Empty values write a null pointer (as proxy-wasm-cpp-host
/// does), which the Rust SDK reads as "no value".
fn copy_out(c: &mut C, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> R {
    if bytes.is_empty() {
        tri!(write_u32(c, ptr_ptr, 0));
        tri!(write_u32(c, size_ptr, 0));
        return ok();
    }
    let p = tri!(guest_alloc(c, bytes.len())?);
    tri!(write(c, p, bytes));
    tri!(write_u32(c, ptr_ptr, p as u32));
    tri!(write_u32(c, size_ptr, bytes.len() as u32));
    ok()
}

/// The header map a map type names, to change it (see [`map_for`]).
fn map_mut(st: &mut HostState, map_type: i32) -> Result<&mut Vec<(String, String)>, Status> {
    map_for(st, map_type, true)
}

/// The header map a map type names, to read it (see [`map_for`]).
fn map_ref(st: &mut HostState, map_type: i32) -> Result<&Vec<(String, String)>, Status> {
    map_for(st, map_type, false).map(|m| &*m)
}

/// Which header map a map type names, if it is accessible right now, to
/// `write` or to read. Envoy exposes request headers during the headers
/// callback (and, with `allow_on_headers_stop_iteration`, in the body
/// callbacks while the headers are held), trailers during the trailers
/// callback, response headers during the response headers callback, and in
/// `proxy_on_log` (its access-log phase) the request
/// headers for reading only, with no trailers (NotFound); elsewhere it is
/// BadArgument.
fn map_for(
    st: &mut HostState,
    map_type: i32,
    write: bool,
) -> Result<&mut Vec<(String, String)>, Status> {
    if !(0..=abi::map::MAX).contains(&map_type) {
        return Err(Status::BadArgument);
    }
    let phase = st.phase;
    let live = live_headers(st);
    let req = st.req.as_mut();
    match (map_type, req) {
        (abi::map::HTTP_REQUEST_HEADERS, Some(r)) if r.refuse.header_map => {
            Err(Status::BadArgument)
        }
        (abi::map::HTTP_REQUEST_HEADERS, Some(r)) if phase == Phase::Log && !write => {
            Ok(&mut r.headers)
        }
        (abi::map::HTTP_REQUEST_TRAILERS, _) if phase == Phase::Log && !write => {
            Err(Status::NotFound)
        }
        (abi::map::HTTP_REQUEST_HEADERS, Some(r)) if live => Ok(&mut r.headers),
        (abi::map::HTTP_REQUEST_TRAILERS, Some(r)) if phase == Phase::RequestTrailers => {
            Ok(&mut r.trailers)
        }
        (abi::map::HTTP_RESPONSE_HEADERS, Some(r)) if phase == Phase::ResponseHeaders => {
            Ok(&mut r.response_headers)
        }
        (
            abi::map::HTTP_REQUEST_HEADERS
            | abi::map::HTTP_REQUEST_TRAILERS
            | abi::map::HTTP_RESPONSE_HEADERS,
            _,
        ) => Err(Status::BadArgument),
        _ => Err(Status::NotFound),
    }
}

/// Whether Envoy still holds the request headers a callback could change:
/// in the headers callback, and in the body callbacks while a pause in the
/// headers callback holds them (`allow_on_headers_stop_iteration`).
fn live_headers(st: &HostState) -> bool {
    let held = st.env.options.allow_on_headers_stop_iteration
        && st.req.as_ref().is_some_and(|r| r.headers_held);
    st.phase == Phase::RequestHeaders || (st.phase == Phase::RequestBody && held)
}

/// The request properties Envoy reads from the request headers
/// (`request.path`, `.method`, `.host`, `.scheme`) are there only while it
/// has them: in the headers callback (or the body callbacks while they are
/// held) and in `proxy_on_log`; in the other callbacks they are NotFound.
fn request_property_visible(st: &HostState, path: &str) -> bool {
    const FROM_HEADERS: [&str; 4] = [
        "request.path",
        "request.method",
        "request.host",
        "request.scheme",
    ];
    if !FROM_HEADERS.contains(&path) {
        return true;
    }
    st.phase == Phase::Log || live_headers(st)
}

pub(crate) fn emit_stdio(st: &mut HostState, fd: i32, bytes: &[u8]) {
    let (buf, level, source) = if fd == 1 {
        (&mut st.stdout, LogLevel::Info, LogSource::Stdout)
    } else {
        (&mut st.stderr, LogLevel::Error, LogSource::Stderr)
    };
    buf.extend_from_slice(bytes);
    let mut lines = Vec::new();
    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=nl).collect();
        lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
    }
    for message in lines {
        st.logs.push(LogLine {
            level,
            source,
            message,
        });
    }
}

/// Names defined explicitly below; other `proxy_*` imports get the generic
/// UNIMPLEMENTED answer, other WASI imports ENOSYS, anything else a trap.
const ENV: &str = "env";
const WASI: &str = "wasi_snapshot_preview1";
/// The older name of the same WASI functions, which Envoy also links.
const WASI_UNSTABLE: &str = "wasi_unstable";

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const INVAL: i32 = 28;
    pub const NOSYS: i32 = 52;
    pub const SPIPE: i32 = 70;
    pub const FAULT: i32 = 21;
}

/// Builds the linker for `module`: every known import, plus generic stubs
/// for the functions Envoy provides and the harness does not implement, so
/// no module fails to link over an import it never calls. A function Envoy
/// does not provide is refused here, as Envoy refuses to load the module.
pub(crate) fn linker_for(module: &Module) -> wasmtime::Result<Linker<HostState>> {
    let abi = crate::provided::Abi::of(module.exports().map(|e| e.name()));
    if let Some(missing) = module.imports().find(|i| {
        matches!(i.ty(), ExternType::Func(_))
            && !crate::provided::by_envoy(i.module(), i.name(), abi)
    }) {
        wasmtime::bail!(
            "the module imports `{}.{}`, which Envoy does not provide: Envoy refuses to load it (\"missing import\")",
            missing.module(),
            missing.name()
        );
    }
    let mut l: Linker<HostState> = Linker::new(module.engine());
    let mut defined: HashSet<(&'static str, &'static str)> = HashSet::new();
    define_proxy(&mut l, &mut defined)?;
    define_wasi(&mut l, &mut defined)?;
    // Envoy links the same WASI functions under the older module name.
    l.alias_module(WASI, WASI_UNSTABLE)?;
    let wasi: Vec<_> = defined
        .iter()
        .filter(|(m, _)| *m == WASI)
        .copied()
        .collect();
    defined.extend(wasi.into_iter().map(|(_, n)| (WASI_UNSTABLE, n)));

    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        if defined.iter().any(|(dm, dn)| *dm == m && *dn == n) {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let returns_i32 =
            ty.results().len() == 1 && matches!(ty.results().next(), Some(ValType::I32));
        let name = n.to_string();
        if m == ENV && n.starts_with("proxy_") && returns_i32 {
            l.func_new(
                m,
                n,
                ty.clone(),
                move |mut c, _args, results: &mut [Val]| {
                    count_named(&mut c, &name);
                    results[0] = Val::I32(Status::Unimplemented as i32);
                    Ok(())
                },
            )?;
        } else if (m == WASI || m == WASI_UNSTABLE) && returns_i32 {
            l.func_new(
                m,
                n,
                ty.clone(),
                move |mut c, _args, results: &mut [Val]| {
                    count_named(&mut c, &name);
                    results[0] = Val::I32(errno::NOSYS);
                    Ok(())
                },
            )?;
        }
    }
    l.define_unknown_imports_as_traps(module)?;
    Ok(l)
}

fn define_proxy(
    l: &mut Linker<HostState>,
    defined: &mut HashSet<(&'static str, &'static str)>,
) -> wasmtime::Result<()> {
    let mut d = |name: &'static str| {
        defined.insert((ENV, name));
        name
    };

    l.func_wrap(
        ENV,
        d("proxy_log"),
        |mut c: C, level: i32, ptr: i32, len: i32| -> R {
            count(&mut c, "proxy_log");
            let level = tri!(LogLevel::from_raw(level).ok_or(Status::BadArgument));
            let message = tri!(read_str(&c, ptr, len));
            c.data_mut().logs.push(LogLine {
                level,
                source: LogSource::Proxy,
                message,
            });
            ok()
        },
    )?;

    l.func_wrap(ENV, d("proxy_get_log_level"), |mut c: C, ret: i32| -> R {
        count(&mut c, "proxy_get_log_level");
        let lvl = c.data().env.options.log_level.raw() as u32;
        tri!(write_u32(&mut c, ret, lvl));
        ok()
    })?;

    l.func_wrap(
        ENV,
        d("proxy_get_current_time_nanoseconds"),
        |mut c: C, ret: i32| -> R {
            count(&mut c, "proxy_get_current_time_nanoseconds");
            let now = c.data().env.clock.now_ns();
            tri!(write_u64(&mut c, ret, now));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_tick_period_milliseconds"),
        |mut c: C, period: i32| -> R {
            count(&mut c, "proxy_set_tick_period_milliseconds");
            let st = c.data_mut();
            st.tick_period_ms = period as u32;
            st.next_tick_ms = st.env.clock.now_ms().saturating_add(period as u32 as u64);
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_buffer_bytes"),
        |mut c: C, ty: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> R {
            count(&mut c, "proxy_get_buffer_bytes");
            if !(0..=abi::buffer::MAX).contains(&ty) {
                return status(Status::BadArgument);
            }
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            match ty {
                abi::buffer::HTTP_REQUEST_BODY => {
                    let st = c.data();
                    let in_body = matches!(st.phase, Phase::RequestBody | Phase::RequestTrailers);
                    let Some(req) = st.req.as_ref().filter(|_| in_body) else {
                        return status(Status::NotFound);
                    };
                    // As proxy-wasm-cpp-host: a start past the end is no
                    // error but nothing, and a read past the end is cut.
                    let n = max.min(req.body().len().saturating_sub(start));
                    if n == 0 || req.unreadable {
                        // Nothing, also from hosts that report a body they
                        // cannot hand out: success, with a null pointer and
                        // size written (the SDK sees `None`).
                        return copy_out(&mut c, &[], ret_ptr, ret_size);
                    }
                    let p = tri!(guest_alloc(&mut c, n)?);
                    let Some(memory) = c.data().memory else {
                        return status(Status::InvalidMemoryAccess);
                    };
                    let (data, st) = memory.data_and_store_mut(&mut c);
                    let Some(req) = st.req.as_mut() else {
                        return status(Status::NotFound);
                    };
                    let Some(dst) = span(p, n as i32).and_then(|r| data.get_mut(r)) else {
                        return status(Status::InvalidMemoryAccess);
                    };
                    dst.copy_from_slice(&req.body()[start..start + n]);
                    req.body_bytes_read += n as u64;
                    tri!(write_u32(&mut c, ret_ptr, p as u32));
                    tri!(write_u32(&mut c, ret_size, n as u32));
                    ok()
                }
                // Envoy hands out the plugin configuration while the plugin
                // is being configured, and nowhere else.
                abi::buffer::PLUGIN_CONFIGURATION if c.data().phase != Phase::Configure => {
                    status(Status::NotFound)
                }
                abi::buffer::PLUGIN_CONFIGURATION | abi::buffer::VM_CONFIGURATION => {
                    let env = c.data().env.clone();
                    let all = if ty == abi::buffer::PLUGIN_CONFIGURATION {
                        &env.plugin_config
                    } else {
                        &env.vm_config
                    };
                    let n = max.min(all.len().saturating_sub(start));
                    let bytes = all.get(start..start + n).unwrap_or_default();
                    copy_out(&mut c, bytes, ret_ptr, ret_size)
                }
                _ => status(Status::NotFound),
            }
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_buffer_bytes"),
        |mut c: C, ty: i32, start: i32, size: i32, ptr: i32, len: i32| -> R {
            count(&mut c, "proxy_set_buffer_bytes");
            if !(0..=abi::buffer::MAX).contains(&ty) {
                return status(Status::BadArgument);
            }
            if ty != abi::buffer::HTTP_REQUEST_BODY {
                return status(Status::NotFound);
            }
            let data = tri!(read(&c, ptr, len));
            let st = c.data_mut();
            if st.phase != Phase::RequestBody {
                return status(Status::NotFound);
            }
            let Some(req) = st.req.as_mut() else {
                return status(Status::NotFound);
            };
            // As Envoy's `Buffer::copyFrom`: at the start, the first `size`
            // bytes are replaced; at or past the end, the bytes are added;
            // anywhere else is BadArgument.
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            let len = req.body().len();
            if start != 0 && start < len {
                return status(Status::BadArgument);
            }
            let body = req.body_mut();
            if start == 0 {
                body.splice(..size.min(len), data);
            } else {
                body.extend_from_slice(&data);
            }
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_header_map_pairs"),
        |mut c: C, ty: i32, ret_ptr: i32, ret_size: i32| -> R {
            count(&mut c, "proxy_get_header_map_pairs");
            let bytes = abi::serialize_map(tri!(map_ref(c.data_mut(), ty)));
            copy_out(&mut c, &bytes, ret_ptr, ret_size)
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_header_map_pairs"),
        |mut c: C, ty: i32, ptr: i32, len: i32| -> R {
            count(&mut c, "proxy_set_header_map_pairs");
            let bytes = tri!(read(&c, ptr, len));
            let pairs = tri!(abi::deserialize_map(&bytes).ok_or(Status::BadArgument));
            let map = tri!(map_mut(c.data_mut(), ty));
            *map = pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_header_map_value"),
        |mut c: C, ty: i32, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32| -> R {
            count(&mut c, "proxy_get_header_map_value");
            let key = tri!(read_str(&c, kp, kl)).to_ascii_lowercase();
            let map = tri!(map_ref(c.data_mut(), ty));
            let value = tri!(map
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .ok_or(Status::NotFound));
            copy_out(&mut c, value.as_bytes(), ret_ptr, ret_size)
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_replace_header_map_value"),
        |mut c: C, ty: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> R {
            count(&mut c, "proxy_replace_header_map_value");
            let key = tri!(read_str(&c, kp, kl)).to_ascii_lowercase();
            let value = tri!(read_str(&c, vp, vl));
            let map = tri!(map_mut(c.data_mut(), ty));
            match map.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    map[i].1 = value;
                    let mut j = i + 1;
                    while j < map.len() {
                        if map[j].0 == key {
                            map.remove(j);
                        } else {
                            j += 1;
                        }
                    }
                }
                None => map.push((key, value)),
            }
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_add_header_map_value"),
        |mut c: C, ty: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> R {
            count(&mut c, "proxy_add_header_map_value");
            let key = tri!(read_str(&c, kp, kl)).to_ascii_lowercase();
            let value = tri!(read_str(&c, vp, vl));
            tri!(map_mut(c.data_mut(), ty)).push((key, value));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_remove_header_map_value"),
        |mut c: C, ty: i32, kp: i32, kl: i32| -> R {
            count(&mut c, "proxy_remove_header_map_value");
            let key = tri!(read_str(&c, kp, kl)).to_ascii_lowercase();
            tri!(map_mut(c.data_mut(), ty)).retain(|(k, _)| *k != key);
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_property"),
        |mut c: C, pp: i32, pl: i32, ret_ptr: i32, ret_size: i32| -> R {
            count(&mut c, "proxy_get_property");
            let raw = tri!(read(&c, pp, pl));
            let path = property_path(&raw);
            let st = c.data();
            // Envoy answers from its attributes first; a name it does not
            // know is looked up in the stream's filter state, where what the
            // plugin set is (`wasm.` and the one-segment path), as is
            // `filter_state` and a key.
            let attribute = path.as_deref().and_then(|path| {
                st.req
                    .as_ref()
                    .filter(|_| request_property_visible(st, path))
                    .and_then(|r| r.property(path).map(<[u8]>::to_vec))
                    .or_else(|| st.env.property(path))
            });
            let value = attribute.or_else(|| {
                let key = filter_state_key(&raw)?;
                let req = st.req.as_ref()?;
                let set = req.filter_state.iter().find(|(k, _)| *k == key)?;
                Some(set.1.clone())
            });
            let value = tri!(value.ok_or(Status::NotFound));
            copy_out(&mut c, &value, ret_ptr, ret_size)
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_property"),
        |mut c: C, pp: i32, pl: i32, vp: i32, vl: i32| -> R {
            count(&mut c, "proxy_set_property");
            let raw = tri!(read(&c, pp, pl));
            let value = tri!(read(&c, vp, vl));
            // Envoy keeps properties in the stream's filter state: outside a
            // stream there is none (NOT_FOUND).
            let Some(req) = c.data_mut().req.as_mut() else {
                return status(Status::NotFound);
            };
            // It never changes an attribute: `request\0path` set here is
            // filter state, and reading `request\0path` still gives the path.
            let key = format!("wasm.{}", String::from_utf8_lossy(&raw));
            match req.filter_state.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v = value,
                None => req.filter_state.push((key, value)),
            }
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_shared_data"),
        |mut c: C, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32, ret_cas: i32| -> R {
            count(&mut c, "proxy_get_shared_data");
            let key = tri!(read_str(&c, kp, kl));
            let env = &c.data().env;
            let found = env.shared.get_in(&env.options.vm_id, &key);
            let (value, cas) = tri!(found.ok_or(Status::NotFound));
            let s = copy_out(&mut c, &value, ret_ptr, ret_size)?;
            if s != Status::Ok as i32 {
                return Ok(s);
            }
            tri!(write_u32(&mut c, ret_cas, cas));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_shared_data"),
        |mut c: C, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> R {
            count(&mut c, "proxy_set_shared_data");
            let key = tri!(read_str(&c, kp, kl));
            let value = tri!(read(&c, vp, vl));
            let env = &c.data().env;
            tri!(env
                .shared
                .set_in(&env.options.vm_id, &key, &value, cas as u32));
            ok()
        },
    )?;

    l.func_wrap(ENV, d("proxy_continue_stream"), |mut c: C, ty: i32| -> R {
        count(&mut c, "proxy_continue_stream");
        if !(0..=3).contains(&ty) {
            return status(Status::BadArgument);
        }
        if ty == abi::STREAM_HTTP_REQUEST {
            match c.data_mut().req.as_mut() {
                Some(r) => r.continue_requested = true,
                None => return status(Status::NotFound),
            }
        }
        ok()
    })?;

    l.func_wrap(ENV, d("proxy_close_stream"), |mut c: C, ty: i32| -> R {
        count(&mut c, "proxy_close_stream");
        if !(0..=3).contains(&ty) {
            return status(Status::BadArgument);
        }
        if ty == abi::STREAM_HTTP_REQUEST {
            match c.data_mut().req.as_mut() {
                Some(r) if r.refuse.stream_reset => return status(Status::BadArgument),
                Some(r) => r.close_requested = true,
                None => return status(Status::NotFound),
            }
        }
        ok()
    })?;

    l.func_wrap(
        ENV,
        d("proxy_send_local_response"),
        |mut c: C,
         code: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> R {
            count(&mut c, "proxy_send_local_response");
            let details = tri!(read_str(&c, dp, dl));
            let body = tri!(read(&c, bp, bl));
            let hbytes = tri!(read(&c, hp, hl));
            // Envoy reads a malformed header map as no headers and still
            // sends the reply.
            let headers = abi::deserialize_map(&hbytes).unwrap_or_default();
            let st = c.data_mut();
            let active = matches!(
                st.phase,
                Phase::RequestHeaders | Phase::RequestBody | Phase::RequestTrailers
            );
            let Some(req) = st.req.as_mut().filter(|r| active && !r.refuse.local_reply) else {
                // No stream to answer (root context, or the stream already
                // ended), or a test's host that refuses.
                return status(Status::BadArgument);
            };
            // Deferred until the callback returns; the first reply wins.
            if req.local_reply.is_none() {
                req.local_reply = Some(LocalReply {
                    source: ReplySource::Plugin,
                    status: code as u32,
                    details,
                    headers,
                    body,
                    grpc_status: grpc,
                });
            }
            ok()
        },
    )?;

    l.func_wrap(ENV, d("proxy_done"), |mut c: C| -> R {
        count(&mut c, "proxy_done");
        ok()
    })?;

    l.func_wrap(
        ENV,
        d("proxy_define_metric"),
        |mut c: C, ty: i32, np: i32, nl: i32, ret: i32| -> R {
            count(&mut c, "proxy_define_metric");
            let kind = tri!(MetricKind::from_raw(ty).ok_or(Status::BadArgument));
            let name = tri!(read_str(&c, np, nl));
            let id = tri!(c.data().env.metrics.define(kind, &name));
            tri!(write_u32(&mut c, ret, id));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_increment_metric"),
        |mut c: C, id: i32, delta: i64| -> R {
            count(&mut c, "proxy_increment_metric");
            tri!(c.data().env.metrics.increment(id as u32, delta));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_record_metric"),
        |mut c: C, id: i32, value: i64| -> R {
            count(&mut c, "proxy_record_metric");
            tri!(c.data().env.metrics.record(id as u32, value as u64));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_get_metric"),
        |mut c: C, id: i32, ret: i32| -> R {
            count(&mut c, "proxy_get_metric");
            let v = tri!(c.data().env.metrics.get_by_id(id as u32));
            tri!(write_u64(&mut c, ret, v));
            ok()
        },
    )?;

    l.func_wrap(
        ENV,
        d("proxy_set_effective_context"),
        |mut c: C, _ctx: i32| -> R {
            count(&mut c, "proxy_set_effective_context");
            ok()
        },
    )?;

    Ok(())
}

fn define_wasi(
    l: &mut Linker<HostState>,
    defined: &mut HashSet<(&'static str, &'static str)>,
) -> wasmtime::Result<()> {
    let mut d = |name: &'static str| {
        defined.insert((WASI, name));
        name
    };

    l.func_wrap(
        WASI,
        d("fd_write"),
        |mut c: C, fd: i32, iovs: i32, n: i32, nwritten: i32| -> R {
            count(&mut c, "fd_write");
            if fd != 1 && fd != 2 {
                return Ok(errno::BADF);
            }
            let Ok(table) = read(&c, iovs, n.saturating_mul(8)) else {
                return Ok(errno::FAULT);
            };
            let mut bytes = Vec::new();
            for iov in table.chunks_exact(8) {
                let p = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                match read(&c, p, len) {
                    Ok(b) => bytes.extend_from_slice(&b),
                    Err(_) => return Ok(errno::FAULT),
                }
            }
            emit_stdio(c.data_mut(), fd, &bytes);
            if write_u32(&mut c, nwritten, bytes.len() as u32).is_err() {
                return Ok(errno::FAULT);
            }
            Ok(errno::SUCCESS)
        },
    )?;

    l.func_wrap(
        WASI,
        d("fd_read"),
        |mut c: C, fd: i32, _iovs: i32, _n: i32, nread: i32| -> R {
            count(&mut c, "fd_read");
            if fd != 0 {
                return Ok(errno::BADF);
            }
            // stdin is empty: end of file.
            if write_u32(&mut c, nread, 0).is_err() {
                return Ok(errno::FAULT);
            }
            Ok(errno::SUCCESS)
        },
    )?;

    l.func_wrap(WASI, d("fd_close"), |mut c: C, fd: i32| -> R {
        count(&mut c, "fd_close");
        Ok(if (0..=2).contains(&fd) {
            errno::SUCCESS
        } else {
            errno::BADF
        })
    })?;

    l.func_wrap(
        WASI,
        d("fd_seek"),
        |mut c: C, fd: i32, _off: i64, _whence: i32, _ret: i32| -> R {
            count(&mut c, "fd_seek");
            Ok(if (0..=2).contains(&fd) {
                errno::SPIPE
            } else {
                errno::BADF
            })
        },
    )?;

    l.func_wrap(
        WASI,
        d("fd_fdstat_get"),
        |mut c: C, fd: i32, buf: i32| -> R {
            count(&mut c, "fd_fdstat_get");
            if !(0..=2).contains(&fd) {
                return Ok(errno::BADF);
            }
            // fdstat: filetype u8 (2 = character device), flags u16 (1 = append
            // for the output streams), rights base / inheriting u64.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            if fd != 0 {
                stat[2] = 1;
            }
            stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            if write(&mut c, buf, &stat).is_err() {
                return Ok(errno::FAULT);
            }
            Ok(errno::SUCCESS)
        },
    )?;

    l.func_wrap(
        WASI,
        d("fd_prestat_get"),
        |mut c: C, _fd: i32, _buf: i32| -> R {
            count(&mut c, "fd_prestat_get");
            // No preopened directories.
            Ok(errno::BADF)
        },
    )?;

    l.func_wrap(
        WASI,
        d("fd_prestat_dir_name"),
        |mut c: C, _fd: i32, _p: i32, _l: i32| -> R {
            count(&mut c, "fd_prestat_dir_name");
            Ok(errno::BADF)
        },
    )?;

    for name in ["environ_sizes_get", "args_sizes_get"] {
        l.func_wrap(
            WASI,
            d(name),
            move |mut c: C, count_ptr: i32, size_ptr: i32| -> R {
                count(&mut c, name);
                if write_u32(&mut c, count_ptr, 0).is_err()
                    || write_u32(&mut c, size_ptr, 0).is_err()
                {
                    return Ok(errno::FAULT);
                }
                Ok(errno::SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        l.func_wrap(WASI, d(name), move |mut c: C, _a: i32, _b: i32| -> R {
            count(&mut c, name);
            Ok(errno::SUCCESS)
        })?;
    }

    l.func_wrap(
        WASI,
        d("clock_time_get"),
        |mut c: C, id: i32, _precision: i64, ret: i32| -> R {
            count(&mut c, "clock_time_get");
            if !(0..=3).contains(&id) {
                return Ok(errno::INVAL);
            }
            let now = c.data().env.clock.now_ns();
            if write_u64(&mut c, ret, now).is_err() {
                return Ok(errno::FAULT);
            }
            Ok(errno::SUCCESS)
        },
    )?;

    l.func_wrap(WASI, d("random_get"), |mut c: C, buf: i32, len: i32| -> R {
        count(&mut c, "random_get");
        // Filled in place: the length is the guest's, so the host allocates
        // nothing in proportion to it.
        let (Some(m), Some(r)) = (c.data().memory, span(buf, len)) else {
            return Ok(errno::FAULT);
        };
        let (data, st) = m.data_and_store_mut(&mut c);
        let Some(out) = data.get_mut(r) else {
            return Ok(errno::FAULT);
        };
        for b in out.iter_mut() {
            // xorshift64*: deterministic per VM, so runs are reproducible.
            st.rng ^= st.rng >> 12;
            st.rng ^= st.rng << 25;
            st.rng ^= st.rng >> 27;
            *b = (st.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
        Ok(errno::SUCCESS)
    })?;

    l.func_wrap(
        WASI,
        d("proc_exit"),
        |mut c: C, code: i32| -> wasmtime::Result<()> {
            count(&mut c, "proc_exit");
            Err(wasmtime::Error::msg(format!(
                "guest called proc_exit({code})"
            )))
        },
    )?;

    Ok(())
}
