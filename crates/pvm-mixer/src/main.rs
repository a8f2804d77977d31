//! `pvm-mixer`: a live terminal mixer for pipewire-volume-mixer.
//!
//! Threads, each asleep in the kernel until it has something to do:
//! the snapshot watcher (`feed.rs`, a futex wait), the terminal reader
//! (crossterm's `read`), the command worker (`worker.rs`, the socket), the
//! signal thread (`term.rs`), and this main thread, which owns the state and
//! the terminal and redraws after each batch of events. Nothing ticks.

mod app;
mod cli;
mod feed;
mod keys;
mod render;
mod term;
mod worker;

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{bail, Context as _};
use clap::FromArgMatches;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use app::{Action, App, Job};
use cli::{Cli, Tool};

/// Everything the main loop waits for.
enum Event {
    /// A key, the mouse, a resize.
    Input(crossterm::event::Event),
    /// The terminal cannot be read any more.
    InputFailed(io::Error),
    /// A new state from the snapshot.
    Feed(feed::Update),
    /// The command worker's report.
    Worker(worker::Report),
    /// SIGTERM, SIGHUP or SIGINT.
    Signal(i32),
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&cli::command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Some(Tool::Completions { shell }) => {
            clap_complete::generate(shell, &mut cli::command(), "pvm-mixer", &mut io::stdout());
            ExitCode::SUCCESS
        }
        Some(Tool::Man) => match clap_mangen::Man::new(cli::command()).render(&mut io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pvm-mixer: {e}");
                ExitCode::FAILURE
            }
        },
        None => match run(cli) {
            Ok(code) => code,
            Err(e) => {
                term::restore();
                eprintln!("pvm-mixer: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let Some(path) = &cli.log else { return Ok(()) };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging(&cli)?;
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        bail!("pvm-mixer needs a terminal (use `pvmctl status` or `pvmctl watch` in scripts)");
    }
    let shm = cli.shm.clone().unwrap_or_else(pvm_ipc::paths::shm_path);
    let socket = cli.socket.clone().unwrap_or_else(pvm_ipc::paths::socket_path);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing::info!(shm = %shm.display(), socket = %socket.display(), "starting");

    let (events, inbox) = mpsc::channel::<Event>();
    let (jobs, job_queue) = mpsc::channel::<Job>();
    let tx = events.clone();
    term::on_signals(move |signal| tx.send(Event::Signal(signal)).is_ok()).context("cannot catch signals")?;
    let tx = events.clone();
    feed::spawn(shm, move |update| tx.send(Event::Feed(update)).is_ok()).context("cannot start the snapshot thread")?;
    let tx = events.clone();
    worker::spawn(socket, job_queue, move |report| tx.send(Event::Worker(report)).is_ok())
        .context("cannot start the command thread")?;

    term::install_panic_hook();
    term::enter().context("cannot set up the terminal")?;
    let tx = events;
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            let event = match crossterm::event::read() {
                Ok(event) => Event::Input(event),
                Err(e) => {
                    let _ = tx.send(Event::InputFailed(e));
                    return;
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        })
        .context("cannot start the input thread")?;

    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout())).context("cannot draw on the terminal")?;
    let mut app = App::new(no_color);
    let code = main_loop(&mut terminal, &mut app, &inbox, &jobs);
    term::restore();
    code
}

/// Handles events until the user quits or a signal arrives; redraws after
/// each batch of events that changed something.
fn main_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    app: &mut App,
    inbox: &mpsc::Receiver<Event>,
    jobs: &mpsc::Sender<Job>,
) -> anyhow::Result<ExitCode> {
    terminal.draw(|frame| render::draw(frame, app))?;
    while let Ok(first) = inbox.recv() {
        let mut redraw = false;
        for event in std::iter::once(first).chain(inbox.try_iter()) {
            match handle(app, event, jobs)? {
                Step::Quit(code) => return Ok(code),
                Step::Redraw => redraw = true,
                Step::Nothing => {}
            }
        }
        if redraw {
            terminal.draw(|frame| render::draw(frame, app))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

enum Step {
    Quit(ExitCode),
    Redraw,
    Nothing,
}

fn handle(app: &mut App, event: Event, jobs: &mpsc::Sender<Job>) -> anyhow::Result<Step> {
    Ok(match event {
        Event::Input(crossterm::event::Event::Resize(..)) => Step::Redraw,
        Event::Input(input) => {
            let Some(action) = keys::action_for(&input) else {
                // Any key closes the help, even one without a meaning.
                let key_press = matches!(&input, crossterm::event::Event::Key(k) if k.kind != crossterm::event::KeyEventKind::Release);
                return Ok(if key_press && app.close_help() { Step::Redraw } else { Step::Nothing });
            };
            let quits = action == Action::Quit || (action == Action::Close && app.popup.is_none());
            if quits {
                return Ok(Step::Quit(ExitCode::SUCCESS));
            }
            if let Some(job) = app.act(action) {
                jobs.send(job).context("the command thread stopped")?;
            }
            Step::Redraw
        }
        Event::InputFailed(e) => bail!("cannot read the terminal: {e}"),
        Event::Feed(update) => {
            app.stream_counts = update.stream_counts;
            app.on_link(update.link, update.status);
            Step::Redraw
        }
        Event::Worker(worker::Report::Answered(job, outcome)) => {
            app.on_reply(&job, outcome);
            Step::Redraw
        }
        Event::Worker(worker::Report::Superseded) => {
            app.on_superseded();
            Step::Nothing
        }
        Event::Signal(signal) => {
            tracing::info!(signal, "stopping on a signal");
            Step::Quit(ExitCode::from(128u8.saturating_add(signal as u8)))
        }
    })
}
