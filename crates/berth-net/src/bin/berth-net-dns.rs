//! Runs one network's resolver the way the engine's `berth __dns CONFIG` does: used by the
//! crate's tests and bench. `berth-net-dns CONFIG`.

fn main() {
    let Some(config) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-net-dns CONFIG");
        std::process::exit(2);
    };
    if let Err(e) = berth_net::dns::serve(std::path::Path::new(&config)) {
        eprintln!("berth-net-dns: {e}");
        std::process::exit(1);
    }
}
