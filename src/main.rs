//! `kittbgpd`: run the daemon, check a config, or ask a running daemon.

use clap::{Parser, Subcommand};
use kittbgpd::config::{self, DEFAULT_CONTROL_SOCKET};
use kittbgpd::ctl::{self, Request, RouteView};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(panic = "abort")]
macro_rules! panic_strategy {
    () => {
        "abort"
    };
}
#[cfg(not(panic = "abort"))]
macro_rules! panic_strategy {
    () => {
        "unwind"
    };
}

// A panicking task must take the daemon down, not leave its sessions up with
// a dead RIB or FIB: see `panic = "abort"` in Cargo.toml.
#[cfg(not(any(panic = "abort", test)))]
compile_error!("kittbgpd must be built with panic = \"abort\" (Cargo.toml profiles)");

/// `--version`: the version and the panic strategy the binary was built with.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (panic=",
    // cfg!(panic = ...) as a literal for concat!.
    panic_strategy!(),
    ")"
);

#[derive(Parser)]
#[command(
    name = "kittbgpd",
    version,
    long_version = LONG_VERSION,
    about = "BGP daemon for WireGuard routing fabrics"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG-style filter); RUST_LOG wins.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and print the effective config, or every error with file:line.
    /// With the other nodes' files too (`check -c node1.toml node2.toml ...`): also that each
    /// tunnel has a tunnel back with the same addresses and an endpoint on at least one end.
    Check {
        /// Config files of other nodes of the fabric, checked with this one.
        #[arg(value_name = "OTHER")]
        others: Vec<PathBuf>,
    },
    /// Ask the running daemon (like birdc).
    Show {
        #[command(subcommand)]
        what: Show,
        /// Control socket (default: from -c FILE, else /run/kittbgpd/kittbgpd.sock).
        #[arg(short, long, global = true, value_name = "SOCKET")]
        socket: Option<PathBuf>,
        /// Print JSON for scripts.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Let a session run again: clears `kittbgpd disable` and a disable by
    /// `import_limit_action = "disable"` (a dead link still holds it down).
    Enable {
        neighbor: String,
        #[arg(short, long, value_name = "SOCKET")]
        socket: Option<PathBuf>,
    },
    /// Hold a session down (Cease / Administrative Shutdown) until `kittbgpd enable`.
    Disable {
        neighbor: String,
        #[arg(short, long, value_name = "SOCKET")]
        socket: Option<PathBuf>,
    },
    /// Write the daemon's tables to a file.
    Dump {
        #[command(subcommand)]
        what: Dump,
    },
    /// Re-read the configuration file of the running daemon, validate it, and
    /// apply only the difference (SIGHUP does the same). An invalid file
    /// changes nothing and its errors are printed.
    Reload {
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
        #[arg(short, long, value_name = "SOCKET")]
        socket: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// WireGuard keys, so no other tool is needed.
    Wg {
        #[command(subcommand)]
        what: Wg,
    },
}

#[derive(Subcommand)]
enum Dump {
    /// Loc-RIB and Adj-RIB-In as MRT TABLE_DUMP_V2 (RFC 6396; views
    /// "loc-rib" and "adj-rib-in"), readable by bgpdump, bgpkit, BGPStream.
    Mrt {
        file: PathBuf,
        #[arg(short, long, value_name = "SOCKET")]
        socket: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Wg {
    /// Write a new private key (base64) to FILE, mode 0600; refuses to overwrite.
    Genkey {
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Print the public key of the private key in FILE ("-": standard input).
    Pubkey { file: PathBuf },
}

#[derive(Subcommand)]
enum Show {
    /// Sessions: state, since when, router id, message counts.
    Neighbors,
    /// One line per session (like birdc `show protocols`): state, since,
    /// why it is held down, last error.
    Protocols,
    /// Every candidate for PREFIX with every attribute (like birdc `show route PREFIX all`).
    Route {
        /// An IPv4 or IPv6 prefix (a bare address means /32 or /128).
        prefix: String,
    },
    /// The configuration in force, as `check` prints it (a reload's changes
    /// that need a daemon restart are not in it).
    Config,
    /// Routes: every candidate, the best marked `*` (like birdc `show route`).
    Routes {
        /// Only the best route of each prefix.
        #[arg(long, conflicts_with = "filtered")]
        best: bool,
        /// Only routes rejected by import policy, with the reason.
        #[arg(long)]
        filtered: bool,
        /// The table of this [[view]] (default: the default view).
        #[arg(long)]
        view: Option<String>,
    },
    /// Measured links: last and smoothed RTT, loss, applied cost, last cost changes.
    Links,
    /// Tunnels built from [wireguard]: endpoint, latest handshake, rx/tx bytes, link state.
    Tunnels,
    /// BFD sessions (neighbors with bfd = true): state, remote state, discriminators,
    /// negotiated intervals, detection time, last diagnostic, uptime, packets.
    Bfd,
    /// Why a route won or lost: every candidate for PREFIX with its received MED,
    /// link cost and total, and the decision step that ruled each loser out.
    Explain {
        /// An IPv4 or IPv6 prefix (a bare address means /32 or /128).
        prefix: String,
        /// In the table of this [[view]]: the link cost is the view's.
        #[arg(long)]
        view: Option<String>,
    },
    /// Kernel routes: per table and prefix desired, installed, conflict
    /// (another protocol's route at our metric) or failed, with the error.
    Kernel {
        /// Only this kernel table (`[kernel] table`, or a view's).
        #[arg(long)]
        table: Option<u32>,
    },
    /// Routing views: each policy rule with its priority, family, table,
    /// selector and state; other protocols' rules in our range; failures.
    Views,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() {
        // A command whose reader went away (`| head`, `| grep -q`) ends as
        // Unix tools do, by SIGPIPE, not with a panic on the broken pipe.
        // SAFETY: restoring the default disposition, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        None => run(&cli.config, &cli.log_level),
        Some(Command::Check { others }) if others.is_empty() => check(&cli.config),
        Some(Command::Check { others }) => check_fabric(&cli.config, &others),
        Some(Command::Show { what, socket, json }) => show(&cli.config, what, socket, json),
        Some(Command::Enable { neighbor, socket }) => {
            admin(&cli.config, socket, Request::Enable { neighbor })
        }
        Some(Command::Disable { neighbor, socket }) => {
            admin(&cli.config, socket, Request::Disable { neighbor })
        }
        Some(Command::Dump {
            what: Dump::Mrt { file, socket },
        }) => dump_mrt(&cli.config, socket, file),
        Some(Command::Reload {
            dry_run,
            socket,
            json,
        }) => reload(&cli.config, socket, dry_run, json),
        Some(Command::Wg { what }) => wg(what),
    }
}

fn wg(what: Wg) -> ExitCode {
    use kittbgpd::config::wireguard::WgKey;
    use std::io::{Read, Write};
    match what {
        Wg::Genkey { output } => {
            let key = wireguard_control::Key::generate_private();
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&output)
                .and_then(|mut f| writeln!(f, "{}", key.to_base64()));
            match written {
                Ok(()) => {
                    println!("{}", key.get_public().to_base64());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kittbgpd: {}: {e}", output.display());
                    ExitCode::FAILURE
                }
            }
        }
        Wg::Pubkey { file } => {
            let mut text = String::new();
            let read = if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(&file).map(|t| text = t)
            };
            if let Err(e) = read {
                eprintln!("kittbgpd: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            match WgKey::from_base64(&text) {
                Some(k) => {
                    println!("{}", k.public().to_base64());
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!(
                        "kittbgpd: {}: not a WireGuard key (32 bytes in base64)",
                        file.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn reload(cfg: &Option<PathBuf>, socket: Option<PathBuf>, dry_run: bool, json: bool) -> ExitCode {
    match ctl::query(&control_socket(cfg, socket), &Request::Reload { dry_run }) {
        Ok(v) if v.get("error").is_some() => {
            eprintln!(
                "kittbgpd: reload refused:\n{}",
                v["error"].as_str().unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        Ok(v) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", ctl::render_reload(&v));
            }
            // Applied, but not all of it: say so to scripts too.
            let failed = v.get("failed").and_then(|f| f.as_array());
            if failed.is_some_and(|f| !f.is_empty()) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("kittbgpd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_prefix(prefix: &str) -> Option<ipnet::IpNet> {
    prefix
        .parse::<ipnet::IpNet>()
        .or_else(|_| prefix.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .ok()
}

fn admin(cfg: &Option<PathBuf>, socket: Option<PathBuf>, request: Request) -> ExitCode {
    match ctl::query(&control_socket(cfg, socket), &request) {
        Ok(v) => {
            let what = if v.get("enabled").and_then(|e| e.as_bool()) == Some(true) {
                "enabled"
            } else {
                "disabled"
            };
            println!(
                "{}: {what}",
                v.get("neighbor").and_then(|n| n.as_str()).unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kittbgpd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The control socket: given, else from -c FILE, else the default.
fn control_socket(cfg: &Option<PathBuf>, socket: Option<PathBuf>) -> PathBuf {
    socket
        .or_else(|| {
            cfg.as_ref().and_then(|p| match config::load(p) {
                Ok(c) => Some(c.control_socket),
                // An invalid file (e.g. `reload` of a broken edit): its socket if readable.
                Err(_) => std::fs::read_to_string(p)
                    .ok()
                    .and_then(|t| t.parse::<toml::Table>().ok())
                    .and_then(|t| t.get("control_socket")?.as_str().map(PathBuf::from)),
            })
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET))
}

fn config_path(path: &Option<PathBuf>) -> Result<&PathBuf, ExitCode> {
    path.as_ref().ok_or_else(|| {
        eprintln!("kittbgpd: no configuration file: use -c FILE");
        ExitCode::from(2)
    })
}

fn check(path: &Option<PathBuf>) -> ExitCode {
    let path = match config_path(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match config::load(path) {
        Ok(cfg) => {
            match toml::to_string_pretty(&cfg) {
                Ok(text) => print!("# effective configuration of {}\n{text}", path.display()),
                Err(e) => println!("{cfg:#?}\n# (cannot render as TOML: {e})"),
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

/// Several nodes' files: each validated, then the tunnels between them.
fn check_fabric(path: &Option<PathBuf>, others: &[PathBuf]) -> ExitCode {
    let first = match config_path(path) {
        Ok(p) => p.clone(),
        Err(code) => return code,
    };
    let files: Vec<PathBuf> = std::iter::once(first)
        .chain(others.iter().cloned())
        .collect();
    let mut loaded = Vec::new();
    let mut failed = 0;
    for f in &files {
        match config::load(f) {
            Ok(c) => loaded.push((f.display().to_string(), c)),
            Err(errors) => {
                eprintln!("{errors}");
                failed += errors.0.len();
            }
        }
    }
    let refs: Vec<(&str, &config::Config)> = loaded.iter().map(|(f, c)| (f.as_str(), c)).collect();
    let cross = config::wireguard::cross_check(&refs);
    for e in &cross {
        eprintln!("{e}");
    }
    failed += cross.len();
    if failed == 0 {
        println!("{} files: ok, tunnels between them consistent", files.len());
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} error(s)");
        ExitCode::FAILURE
    }
}

fn run(path: &Option<PathBuf>, log_level: &str) -> ExitCode {
    let path = match config_path(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // RUST_LOG, else --log-level: `level` or `target=level,...` (no span filters).
    let parse = |s: &str| s.parse::<tracing_subscriber::filter::Targets>().ok();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| parse(&s))
        .or_else(|| parse(log_level))
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::INFO)
        });
    // Colours only for a person at a terminal, not in log files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // (A layer: `fmt()`'s own builder would filter at INFO before `filter`.)
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(ansi),
        )
        .with(filter)
        .init();
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kittbgpd: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kittbgpd::runtime::run(cfg, path.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `kittbgpd dump mrt FILE`: the daemon writes FILE (a relative path is
/// taken from the current directory).
fn dump_mrt(cfg: &Option<PathBuf>, socket: Option<PathBuf>, file: PathBuf) -> ExitCode {
    let file = match std::path::absolute(&file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kittbgpd: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match ctl::query(&control_socket(cfg, socket), &Request::DumpMrt { file }) {
        Ok(v) => {
            println!(
                "{} bytes written to {}",
                v.get("bytes").and_then(|b| b.as_u64()).unwrap_or(0),
                v.get("file").and_then(|f| f.as_str()).unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kittbgpd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn show(cfg: &Option<PathBuf>, what: Show, socket: Option<PathBuf>, json: bool) -> ExitCode {
    let socket = control_socket(cfg, socket);
    let protocols = matches!(what, Show::Protocols);
    let mut route_prefix = None;
    let request = match what {
        Show::Neighbors | Show::Protocols => Request::Neighbors,
        Show::Config => Request::Config,
        Show::Route { prefix } => match parse_prefix(&prefix) {
            Some(p) => {
                route_prefix = Some(p);
                Request::Routes {
                    all: true,
                    filtered: true,
                    view: None,
                }
            }
            None => {
                eprintln!("kittbgpd: {prefix:?} is not a prefix or address");
                return ExitCode::from(2);
            }
        },
        Show::Links => Request::Links,
        Show::Tunnels => Request::Tunnels,
        Show::Bfd => Request::Bfd,
        Show::Kernel { table } => Request::Kernel { table },
        Show::Views => Request::Views,
        Show::Routes {
            best,
            filtered,
            view,
        } => Request::Routes {
            all: !best && !filtered,
            filtered,
            view,
        },
        Show::Explain { prefix, view } => {
            let parsed = prefix
                .parse::<ipnet::IpNet>()
                .or_else(|_| prefix.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(p) => Request::Explain { prefix: p, view },
                Err(_) => {
                    eprintln!("kittbgpd: {prefix:?} is not a prefix or address");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let value = match ctl::query(&socket, &request) {
        Ok(v) if v.get("error").is_some() => {
            eprintln!("kittbgpd: {}", v["error"].as_str().unwrap_or_default());
            return ExitCode::FAILURE;
        }
        Ok(v) => v,
        Err(e) => {
            eprintln!("kittbgpd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(prefix) = route_prefix {
        let routes = match serde_json::from_value::<Vec<RouteView>>(value) {
            Ok(r) => ctl::routes_for(r, prefix),
            Err(e) => {
                eprintln!("kittbgpd: unexpected response: {e}");
                return ExitCode::FAILURE;
            }
        };
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&routes).unwrap_or_default()
            );
        } else if routes.is_empty() {
            println!("{prefix}: no route");
        } else {
            print!("{}", ctl::render_route_detail(&routes));
        }
        return ExitCode::SUCCESS;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    match request {
        Request::Neighbors if protocols => print!("{}", ctl::render_protocols(&value)),
        Request::Neighbors => print!("{}", ctl::render_neighbors(&value)),
        Request::Config => match ctl::render_config(&value) {
            Ok(text) => print!("# configuration in force\n{text}"),
            Err(e) => {
                eprintln!("kittbgpd: unexpected response: {e}");
                return ExitCode::FAILURE;
            }
        },
        Request::Reload { .. } => {}
        Request::Explain { .. } => print!("{}", ctl::render_explain(&value)),
        Request::Links => print!("{}", ctl::render_links(&value)),
        Request::Tunnels => print!("{}", ctl::render_tunnels(&value)),
        Request::Bfd => print!("{}", ctl::render_bfd(&value)),
        Request::Kernel { .. } => print!("{}", ctl::render_kernel(&value)),
        Request::Views => print!("{}", ctl::render_views(&value)),
        Request::Enable { .. } | Request::Disable { .. } | Request::DumpMrt { .. } => {}
        Request::Routes { .. } => match serde_json::from_value::<Vec<RouteView>>(value) {
            Ok(routes) => print!("{}", ctl::render_routes(&routes)),
            Err(e) => {
                eprintln!("kittbgpd: unexpected response: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}
