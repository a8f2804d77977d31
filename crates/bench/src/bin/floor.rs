//! `pvm-bench-floor`: the least a PipeWire client can do. Connects, waits
//! for its first round trip with the server, prints `synced`, then waits
//! for stdin to close so the benchmark can read its RSS.

use std::io::{Read as _, Write as _};

use pipewire as pw;

fn main() -> Result<(), pw::Error> {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None)?;
    let context = pw::context::ContextRc::new(&main_loop, None)?;
    let core = context.connect_rc(None)?;
    let pending = core.sync(0)?;
    let quit = main_loop.clone();
    let _listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id == pw::core::PW_ID_CORE && seq == pending {
                quit.quit();
            }
        })
        .register();
    main_loop.run();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "synced");
    let _ = out.flush();
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    Ok(())
}
