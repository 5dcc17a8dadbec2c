//! The Guide's "multiple socket poller", blocking: one thread reads tasks from a PULL and
//! weather updates from a SUB, waiting on both at once with a [`Poller`] (`zmq_poll`).
//!
//! ```text
//! cargo run --example mspoller                                           # demo, exits 0
//! cargo run --example mspoller -- tcp://localhost:5557 tcp://localhost:5556
//! ```
//!
//! With endpoints, it connects the PULL to the first (the Guide's task ventilator) and the
//! SUB, subscribed to zip code 10001, to the second (the weather server), and runs forever.

use ferromq::blocking::{Interest, Poller, Pub, Pull, Push, Sub};
use ferromq::{Error, SocketOptions};
use std::time::Duration;

/// Bounds every wait of the demo.
const DEMO_TIMEOUT: Duration = Duration::from_secs(10);
/// Tasks and weather updates the demo sends.
const DEMO_MSGS: usize = 20;

/// What [`run`] received.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Tasks from the PULL socket.
    pub tasks: Vec<String>,
    /// Weather updates from the SUB socket.
    pub updates: Vec<String>,
}

/// Processes messages from both sockets as they come until `tasks` tasks and `updates`
/// updates arrived; fails with [`Error::Timeout`] when nothing arrives for `idle`
/// (`None`: wait forever).
pub fn run(
    receiver: &Pull,
    subscriber: &Sub,
    tasks: usize,
    updates: usize,
    idle: Option<Duration>,
) -> ferromq::Result<Received> {
    let mut poller = Poller::new();
    let task_index = poller.add(receiver, Interest::READABLE);
    let update_index = poller.add(subscriber, Interest::READABLE);
    let mut received = Received::default();
    while received.tasks.len() < tasks || received.updates.len() < updates {
        let events = poller.poll(idle)?;
        if events.is_empty() {
            return Err(Error::Timeout(idle.unwrap_or_default()));
        }
        for event in events {
            if event.index == task_index {
                let task = receiver.recv()?;
                // Process task
                received
                    .tasks
                    .push(String::from_utf8_lossy(&task.frames()[0]).into_owned());
            } else if event.index == update_index {
                let update = subscriber.recv()?;
                // Process weather update
                received
                    .updates
                    .push(String::from_utf8_lossy(&update.frames()[0]).into_owned());
            }
        }
    }
    Ok(received)
}

/// A ventilator (PUSH) and a weather server (PUB) on fresh ports, each sending
/// [`DEMO_MSGS`] messages from its own thread, and [`run`] reading both.
pub fn demo() -> ferromq::Result<Received> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(DEMO_TIMEOUT);
    options.send_timeout = Some(DEMO_TIMEOUT);
    let ventilator = Push::with_options(options.clone())?;
    let weather = Pub::with_options(options.clone())?;
    let receiver = Pull::with_options(options.clone())?;
    receiver.connect(ventilator.bind("tcp://127.0.0.1:0")?)?;
    let subscriber = Sub::with_options(options)?;
    subscriber.subscribe("10001 ");
    subscriber.connect(weather.bind("tcp://127.0.0.1:0")?)?;
    weather.wait_for_subscribers(1, Some(DEMO_TIMEOUT))?;

    std::thread::scope(|scope| {
        let sending = scope.spawn(|| -> ferromq::Result<()> {
            for n in 0..DEMO_MSGS {
                ventilator.send(format!("task {n}"))?;
                weather.send(format!("10001 {} {}", 20 + n % 10, 40 + n % 30))?;
                weather.send(format!("10002 {} {}", 20 + n % 10, 40 + n % 30))?;
            }
            Ok(())
        });
        let received = run(
            &receiver,
            &subscriber,
            DEMO_MSGS,
            DEMO_MSGS,
            Some(DEMO_TIMEOUT),
        )?;
        sending.join().expect("sender thread panicked")?;
        Ok(received)
    })
}

fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [tasks, weather] => {
            let receiver = Pull::new();
            receiver.connect(tasks.as_str())?;
            let subscriber = Sub::new();
            subscriber.subscribe("10001 ");
            subscriber.connect(weather.as_str())?;
            run(&receiver, &subscriber, usize::MAX, usize::MAX, None)?;
        }
        [] => {
            let received = demo()?;
            println!(
                "Demo: {} tasks and {} weather updates",
                received.tasks.len(),
                received.updates.len()
            );
        }
        _ => {
            eprintln!("usage: mspoller [<ventilator-endpoint> <weather-endpoint>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
