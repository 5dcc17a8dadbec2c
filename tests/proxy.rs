//! `ferromq::proxy`: every socket pair it serves (ROUTER/DEALER with REQ clients and REP
//! workers, DEALER/DEALER, XSUB/XPUB with subscriptions flowing up, PULL/PUSH), the capture
//! socket, steering (PAUSE, RESUME, TERMINATE, STATISTICS) by a control socket and by a
//! `Steering` handle, and libzmq on both sides: libzmq peers through a ferromq proxy, and
//! ferromq peers through libzmq's `zmq_proxy_steerable`, whose STATISTICS reply must equal
//! ours for the same traffic.

mod common;

use common::libzmq_socket;
use ferromq::proxy::{Command, SendSocket, Statistics, Steering, proxy_steerable};
use ferromq::{
    Dealer, Message, Pair, Pub, Pull, Push, Rep, Req, Router, SocketOptions, Sub, XPub, XSub,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const LOCAL: &str = "tcp://127.0.0.1:0";
/// How long a paused proxy is watched for a message it must not move.
const PAUSED_WATCH: Duration = Duration::from_millis(200);

async fn within<T>(test: impl std::future::Future<Output = T>) -> T {
    timeout(TEST_TIMEOUT, test).await.expect("test timed out")
}

fn text(message: &Message) -> Vec<String> {
    message
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn with_id(id: &str) -> SocketOptions {
    let mut options = SocketOptions::default();
    options.routing_id = Some(id.to_owned().into());
    options
}

/// A REP worker that answers each request with the request and its own name, forever.
fn spawn_rep_worker(endpoint: &ferromq::Endpoint, name: &'static str) {
    let rep = Rep::new();
    rep.connect(endpoint).unwrap();
    tokio::spawn(async move {
        while let Ok(mut request) = rep.recv().await {
            request.push_back(name);
            if rep.send(request).await.is_err() {
                break;
            }
        }
    });
}

/// A steered proxy in a task of its own; `Steering::terminate` ends it.
fn spawn_steered<F, B>(
    frontend: Arc<F>,
    backend: Arc<B>,
    capture: Option<Arc<dyn SendSocket>>,
) -> (Steering, tokio::task::JoinHandle<ferromq::Result<()>>)
where
    F: ferromq::proxy::RecvSocket + 'static,
    B: SendSocket + 'static,
{
    let steering = Steering::new();
    let handle = tokio::spawn({
        let steering = steering.clone();
        async move {
            steering
                .run(&*frontend, &*backend, capture.as_deref())
                .await
        }
    });
    (steering, handle)
}

/// Terminates the proxy, waits for it to end, and returns its final counters (read once it
/// ended: it counts a message sent just after placing it, so a peer may see the message
/// before the counter does).
async fn stop(
    steering: Steering,
    proxy: tokio::task::JoinHandle<ferromq::Result<()>>,
) -> Statistics {
    steering.terminate();
    proxy
        .await
        .unwrap()
        .expect("the proxy ends with Ok after terminate");
    steering.statistics()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_dealer_carries_req_clients_to_rep_workers() {
    within(async {
        let frontend = Arc::new(Router::new());
        let backend = Arc::new(Dealer::new());
        let clients_at = frontend.bind(LOCAL).unwrap();
        let workers_at = backend.bind(LOCAL).unwrap();
        spawn_rep_worker(&workers_at, "w1");
        spawn_rep_worker(&workers_at, "w2");
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        let clients = (0..4).map(|c| {
            let clients_at = clients_at.clone();
            tokio::spawn(async move {
                let req = Req::new();
                req.connect(&clients_at).unwrap();
                for i in 0..25 {
                    let request = format!("client {c} request {i}");
                    req.send(request.as_str()).await.unwrap();
                    let reply = text(&req.recv().await.unwrap());
                    assert_eq!(reply[0], request);
                    assert!(reply[1] == "w1" || reply[1] == "w2", "{reply:?}");
                }
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.unwrap();
        }
        let stats = stop(steering, proxy).await;
        assert_eq!(stats.frontend.messages_in, 100);
        assert_eq!(stats.backend.messages_out, 100);
        assert_eq!(stats.backend.messages_in, 100);
        assert_eq!(stats.frontend.messages_out, 100);
    })
    .await
}

#[tokio::test]
async fn dealer_dealer_moves_messages_both_ways() {
    within(async {
        let frontend = Arc::new(Dealer::new());
        let backend = Arc::new(Dealer::new());
        let client = Dealer::new();
        client.connect(frontend.bind(LOCAL).unwrap()).unwrap();
        let worker = Dealer::new();
        worker.connect(backend.bind(LOCAL).unwrap()).unwrap();
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        for i in 0..200u32 {
            client
                .send(
                    vec![i.to_be_bytes().to_vec(), b"ask".to_vec()]
                        .into_iter()
                        .collect::<Message>(),
                )
                .await
                .unwrap();
        }
        for i in 0..200u32 {
            let mut job = worker.recv().await.unwrap();
            assert_eq!(job.frames()[0][..], i.to_be_bytes());
            job.pop_back();
            job.push_back("answer");
            worker.send(job).await.unwrap();
        }
        for i in 0..200u32 {
            let reply = client.recv().await.unwrap();
            assert_eq!(reply.frames()[0][..], i.to_be_bytes());
            assert_eq!(reply.frames()[1], "answer");
        }
        stop(steering, proxy).await;
    })
    .await
}

#[tokio::test]
async fn xsub_xpub_forwards_subscriptions_up_and_matching_data_down() {
    within(async {
        let publisher = Pub::new();
        let upstream = publisher.bind(LOCAL).unwrap();
        let frontend = Arc::new(XSub::new());
        frontend.connect(&upstream).unwrap();
        let backend = Arc::new(XPub::new());
        let downstream = backend.bind(LOCAL).unwrap();
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        let subscriber = Sub::new();
        subscriber.subscribe("a/");
        subscriber.connect(&downstream).unwrap();
        // The subscription reaches the publisher only through the proxy.
        publisher.wait_for_subscriptions(1).await.unwrap();

        for i in 0..500 {
            publisher.send(format!("b/{i}")).await.unwrap();
            publisher.send(format!("a/{i}")).await.unwrap();
        }
        for i in 0..500 {
            assert_eq!(text(&subscriber.recv().await.unwrap())[0], format!("a/{i}"));
        }
        let stats = stop(steering, proxy).await;
        // The publisher filters: only the subscribed half crossed the proxy.
        assert_eq!(stats.frontend.messages_in, 500);
        assert_eq!(stats.backend.messages_in, 1, "one subscription went up");
    })
    .await
}

#[tokio::test]
async fn pull_push_streams_one_way_in_order() {
    within(async {
        let frontend = Arc::new(Pull::new());
        let backend = Arc::new(Push::new());
        let producer = Push::new();
        producer.connect(frontend.bind(LOCAL).unwrap()).unwrap();
        let consumer = Pull::new();
        backend.connect(consumer.bind(LOCAL).unwrap()).unwrap();
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        let send = async {
            for i in 0..20_000u32 {
                producer.send(i.to_be_bytes().to_vec()).await.unwrap();
            }
        };
        let receive = async {
            for i in 0..20_000u32 {
                assert_eq!(
                    consumer.recv().await.unwrap().frames()[0][..],
                    i.to_be_bytes()
                );
            }
        };
        tokio::join!(send, receive);
        let stats = stop(steering, proxy).await;
        assert_eq!(stats.frontend.messages_in, 20_000);
        assert_eq!(stats.backend.messages_out, 20_000);
        assert_eq!(stats.backend.messages_in, 0);
    })
    .await
}

#[tokio::test]
async fn capture_receives_every_message_of_both_directions() {
    within(async {
        let frontend = Arc::new(Router::new());
        let backend = Arc::new(Dealer::new());
        let capture = Arc::new(Push::new());
        let captured = Pull::new();
        capture.connect(captured.bind(LOCAL).unwrap()).unwrap();
        let clients_at = frontend.bind(LOCAL).unwrap();
        spawn_rep_worker(&backend.bind(LOCAL).unwrap(), "w");
        let (steering, proxy) =
            spawn_steered(frontend, backend, Some(capture as Arc<dyn SendSocket>));

        let req = Req::with_options(with_id("client")).unwrap();
        req.connect(&clients_at).unwrap();
        for i in 0..10 {
            req.send(format!("q{i}")).await.unwrap();
            assert_eq!(
                text(&req.recv().await.unwrap()),
                [format!("q{i}"), "w".into()]
            );
        }
        for i in 0..10 {
            // The request as the ROUTER read it, then the reply as the DEALER read it.
            assert_eq!(
                text(&captured.recv().await.unwrap()),
                ["client".to_owned(), String::new(), format!("q{i}")]
            );
            assert_eq!(
                text(&captured.recv().await.unwrap()),
                [
                    "client".to_owned(),
                    String::new(),
                    format!("q{i}"),
                    "w".into()
                ]
            );
        }
        assert!(matches!(
            captured.try_recv(),
            Err(ferromq::Error::WouldBlock)
        ));
        stop(steering, proxy).await;
    })
    .await
}

/// A REQ client for a REP control socket: sends the command, returns the reply.
async fn ask(control: &Req, command: Command) -> Message {
    control.send(command).await.unwrap();
    control.recv().await.unwrap()
}

#[tokio::test]
async fn paused_proxy_moves_nothing_then_everything_after_resume() {
    within(async {
        let frontend = Pull::new();
        let backend = Push::new();
        let control = Rep::new();
        let producer = Push::new();
        producer.connect(frontend.bind(LOCAL).unwrap()).unwrap();
        let consumer = Pull::new();
        backend.connect(consumer.bind(LOCAL).unwrap()).unwrap();
        let steer = Req::new();
        steer.connect(control.bind(LOCAL).unwrap()).unwrap();

        let run = proxy_steerable(&frontend, &backend, None, &control);
        let test = async {
            // REP control sockets get an empty reply to every command but STATISTICS.
            assert_eq!(text(&ask(&steer, Command::Pause).await), [""]);
            for i in 0..100u32 {
                producer.send(i.to_be_bytes().to_vec()).await.unwrap();
            }
            assert!(
                timeout(PAUSED_WATCH, consumer.recv()).await.is_err(),
                "a message crossed a paused proxy"
            );
            let stats = Statistics::from_message(&ask(&steer, Command::Statistics).await).unwrap();
            assert_eq!(stats, Statistics::default(), "nothing taken while paused");

            assert_eq!(text(&ask(&steer, Command::Resume).await), [""]);
            for i in 0..100u32 {
                assert_eq!(
                    consumer.recv().await.unwrap().frames()[0][..],
                    i.to_be_bytes()
                );
            }
            assert_eq!(text(&ask(&steer, Command::Terminate).await), [""]);
        };
        let (ran, ()) = tokio::join!(run, test);
        ran.expect("TERMINATE ends the proxy with Ok");
    })
    .await
}

#[tokio::test]
async fn terminate_on_a_pair_control_socket_ends_the_proxy() {
    within(async {
        let frontend = Router::new();
        let backend = Dealer::new();
        let control = Pair::new();
        let steer = Pair::new();
        steer.connect(control.bind(LOCAL).unwrap()).unwrap();
        steer.send(Command::Terminate).await.unwrap();
        proxy_steerable(&frontend, &backend, None, &control)
            .await
            .expect("TERMINATE ends the proxy with Ok");
        // A PAIR gets no reply to TERMINATE.
        assert!(matches!(steer.try_recv(), Err(ferromq::Error::WouldBlock)));
    })
    .await
}

#[tokio::test]
async fn closing_a_socket_ends_the_proxy_with_closed() {
    within(async {
        let frontend = Pull::new();
        let backend = Push::new();
        let run = ferromq::proxy(&frontend, &backend, None);
        let close = async { frontend.close().await };
        let (ran, ()) = tokio::join!(run, close);
        assert!(matches!(ran, Err(ferromq::Error::Closed)), "{ran:?}");
    })
    .await
}

#[tokio::test]
async fn statistics_count_whole_messages_and_their_bytes_each_way() {
    within(async {
        let frontend = Dealer::new();
        let backend = Dealer::new();
        let control = Pair::new();
        let client = Dealer::new();
        client.connect(frontend.bind(LOCAL).unwrap()).unwrap();
        let worker = Dealer::new();
        worker.connect(backend.bind(LOCAL).unwrap()).unwrap();
        let steer = Pair::new();
        steer.connect(control.bind(LOCAL).unwrap()).unwrap();

        let run = proxy_steerable(&frontend, &backend, None, &control);
        let test = async {
            // 30 requests of 3 frames (2 + 0 + i bytes), 30 one-frame replies of 7 bytes.
            for i in 0..30usize {
                let request: Message = [b"id".to_vec(), Vec::new(), vec![b'x'; i]]
                    .into_iter()
                    .collect();
                client.send(request).await.unwrap();
            }
            for _ in 0..30 {
                worker.recv().await.unwrap();
                worker.send("replied").await.unwrap();
            }
            for _ in 0..30 {
                client.recv().await.unwrap();
            }
            steer.send(Command::Statistics).await.unwrap();
            let reply = steer.recv().await.unwrap();
            assert_eq!(reply.len(), 8);
            assert!(reply.iter().all(|frame| frame.len() == 8));
            let stats = Statistics::from_message(&reply).unwrap();
            let request_bytes = (0..30u64).map(|i| 2 + i).sum::<u64>();
            assert_eq!(stats.frontend.messages_in, 30);
            assert_eq!(stats.frontend.bytes_in, request_bytes);
            assert_eq!(stats.backend.messages_out, 30);
            assert_eq!(stats.backend.bytes_out, request_bytes);
            assert_eq!(stats.backend.messages_in, 30);
            assert_eq!(stats.backend.bytes_in, 30 * 7);
            assert_eq!(stats.frontend.messages_out, 30);
            assert_eq!(stats.frontend.bytes_out, 30 * 7);
            steer.send(Command::Terminate).await.unwrap();
        };
        let (ran, ()) = tokio::join!(run, test);
        ran.unwrap();
    })
    .await
}

/// 1 KiB starting with `i` (big enough that the kernel's socket buffers hold few of them).
fn kib(i: u32) -> Vec<u8> {
    let mut body = i.to_be_bytes().to_vec();
    body.resize(1024, b'.');
    body
}

#[tokio::test]
async fn a_full_backend_stops_the_proxy_reading_the_frontend() {
    within(async {
        let mut small = SocketOptions::default();
        small.sndhwm = 10;
        small.rcvhwm = 10;
        let frontend = Pull::new();
        let backend = Push::with_options(small.clone()).unwrap();
        let producer = Push::new();
        producer.connect(frontend.bind(LOCAL).unwrap()).unwrap();
        let consumer = Pull::with_options(small).unwrap();
        backend.connect(consumer.bind(LOCAL).unwrap()).unwrap();
        let steering = Steering::new();

        let run = steering.run(&frontend, &backend, None);
        let test = async {
            // The consumer reads nothing: queues fill up to the producer, whose sends then
            // wait. Everything sent arrives once the consumer reads.
            let sent = async {
                let mut sent = 0u32;
                while timeout(PAUSED_WATCH, producer.send(kib(sent)))
                    .await
                    .is_ok()
                {
                    sent += 1;
                }
                sent
            }
            .await;
            let held = steering.statistics().frontend.messages_in
                - steering.statistics().backend.messages_out;
            assert!(
                held <= ferromq::proxy::MAX_BATCH_MSGS as u64,
                "proxy holds {held}"
            );
            for i in 0..sent {
                assert_eq!(consumer.recv().await.unwrap().frames()[0], kib(i));
            }
            steering.terminate();
        };
        let (ran, ()) = tokio::join!(run, test);
        ran.unwrap();
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// libzmq

/// Binds a libzmq socket to a fresh local port and returns the endpoint.
fn libzmq_bind(socket: &zmq::Socket) -> String {
    socket.bind(LOCAL).unwrap();
    socket.get_last_endpoint().unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_req_clients_and_rep_workers_through_a_ferromq_broker() {
    within(async {
        let frontend = Arc::new(Router::new());
        let backend = Arc::new(Dealer::new());
        let clients_at = frontend.bind(LOCAL).unwrap().to_string();
        let workers_at = backend.bind(LOCAL).unwrap().to_string();
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        let ctx = zmq::Context::new();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (ctx, workers_at) = (ctx.clone(), workers_at.clone());
                std::thread::spawn(move || {
                    let rep = libzmq_socket(&ctx, zmq::REP);
                    rep.connect(&workers_at).unwrap();
                    // Each worker serves until told to stop.
                    loop {
                        let request = rep.recv_bytes(0).unwrap();
                        if request == b"stop" {
                            rep.send("stopped", 0).unwrap();
                            return;
                        }
                        let mut reply = request;
                        reply.extend_from_slice(format!(" by {w}").as_bytes());
                        rep.send(reply, 0).unwrap();
                    }
                })
            })
            .collect();
        let clients: Vec<_> = (0..3)
            .map(|c| {
                let (ctx, clients_at) = (ctx.clone(), clients_at.clone());
                tokio::task::spawn_blocking(move || {
                    let req = libzmq_socket(&ctx, zmq::REQ);
                    req.connect(&clients_at).unwrap();
                    for i in 0..20 {
                        let request = format!("c{c} r{i}");
                        req.send(request.as_str(), 0).unwrap();
                        let reply = req.recv_string(0).unwrap().unwrap();
                        assert!(reply.starts_with(&format!("{request} by ")), "{reply}");
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        // Stop the workers through the broker: requests are dealt round-robin, so two stop
        // requests reach two different workers.
        let stopper = tokio::task::spawn_blocking({
            let (ctx, clients_at) = (ctx.clone(), clients_at.clone());
            move || {
                for _ in 0..2 {
                    let req = libzmq_socket(&ctx, zmq::REQ);
                    req.connect(&clients_at).unwrap();
                    req.send("stop", 0).unwrap();
                    assert_eq!(req.recv_string(0).unwrap().unwrap(), "stopped");
                }
            }
        });
        stopper.await.unwrap();
        for worker in workers {
            tokio::task::spawn_blocking(move || worker.join().unwrap())
                .await
                .unwrap();
        }
        assert_eq!(stop(steering, proxy).await.frontend.messages_in, 62);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_push_to_libzmq_pull_through_a_ferromq_streamer() {
    within(async {
        let frontend = Arc::new(Pull::new());
        let backend = Arc::new(Push::new());
        let producers_at = frontend.bind(LOCAL).unwrap().to_string();
        let consumers_at = backend.bind(LOCAL).unwrap().to_string();
        let (steering, proxy) = spawn_steered(frontend, backend, None);

        let ctx = zmq::Context::new();
        let consumer = tokio::task::spawn_blocking({
            let ctx = ctx.clone();
            move || {
                let pull = libzmq_socket(&ctx, zmq::PULL);
                pull.connect(&consumers_at).unwrap();
                for i in 0..10_000u32 {
                    let parts = pull.recv_multipart(0).unwrap();
                    assert_eq!(parts, [i.to_be_bytes().to_vec(), b"tail".to_vec()]);
                }
            }
        });
        let producer = tokio::task::spawn_blocking(move || {
            let push = libzmq_socket(&ctx, zmq::PUSH);
            push.connect(&producers_at).unwrap();
            for i in 0..10_000u32 {
                push.send_multipart([&i.to_be_bytes()[..], b"tail"], 0)
                    .unwrap();
            }
        });
        producer.await.unwrap();
        consumer.await.unwrap();
        stop(steering, proxy).await;
    })
    .await
}

/// Runs libzmq's `zmq_proxy_steerable` on a thread: ROUTER frontend, DEALER backend and PAIR
/// control, each bound to a fresh port; returns the three endpoints and the thread.
fn libzmq_steerable_broker() -> ([String; 3], std::thread::JoinHandle<()>) {
    let (ready, endpoints) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let ctx = zmq::Context::new();
        let mut frontend = libzmq_socket(&ctx, zmq::ROUTER);
        let mut backend = libzmq_socket(&ctx, zmq::DEALER);
        let mut control = libzmq_socket(&ctx, zmq::PAIR);
        ready
            .send([
                libzmq_bind(&frontend),
                libzmq_bind(&backend),
                libzmq_bind(&control),
            ])
            .unwrap();
        zmq::proxy_steerable(&mut frontend, &mut backend, &mut control)
            .expect("libzmq's proxy ends with success after TERMINATE");
    });
    (endpoints.recv().unwrap(), thread)
}

/// Two REQ clients with fixed routing ids send 10 requests each through the broker at
/// `clients_at` to a REP worker at `workers_at`; returns when all replies are in.
async fn fixed_traffic(clients_at: &str, workers_at: &str) {
    let worker = Rep::new();
    worker.connect(workers_at).unwrap();
    let serve = async {
        loop {
            let mut request = worker.recv().await.unwrap();
            request.push_back("ok");
            worker.send(request).await.unwrap();
        }
    };
    let clients = async {
        for name in ["alpha", "bravo-client"] {
            let req = Req::with_options(with_id(name)).unwrap();
            req.connect(clients_at).unwrap();
            for i in 0..10 {
                req.send(format!("{name} asks {i}")).await.unwrap();
                let reply = text(&req.recv().await.unwrap());
                assert_eq!(reply, [format!("{name} asks {i}"), "ok".into()]);
            }
            req.close().await;
        }
    };
    tokio::select! {
        () = serve => unreachable!(),
        () = clients => {}
    }
    worker.close().await;
}

#[tokio::test]
async fn ferromq_peers_through_libzmq_proxy_steerable_and_its_statistics_equal_ours() {
    within(async {
        // libzmq's broker.
        let ([clients_at, workers_at, control_at], thread) =
            tokio::task::spawn_blocking(libzmq_steerable_broker)
                .await
                .unwrap();
        fixed_traffic(&clients_at, &workers_at).await;
        let steer = Pair::new();
        steer.connect(control_at.as_str()).unwrap();
        steer.send(Command::Statistics).await.unwrap();
        let theirs = steer.recv().await.unwrap();
        steer.send(Command::Terminate).await.unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();

        // ferromq's broker, the same traffic.
        let frontend = Router::new();
        let backend = Dealer::new();
        let control = Pair::new();
        let clients_at = frontend.bind(LOCAL).unwrap().to_string();
        let workers_at = backend.bind(LOCAL).unwrap().to_string();
        let steer = Pair::new();
        steer.connect(control.bind(LOCAL).unwrap()).unwrap();
        let run = proxy_steerable(&frontend, &backend, None, &control);
        let test = async {
            fixed_traffic(&clients_at, &workers_at).await;
            steer.send(Command::Statistics).await.unwrap();
            let ours = steer.recv().await.unwrap();
            steer.send(Command::Terminate).await.unwrap();
            ours
        };
        let (ran, ours) = tokio::join!(run, test);
        ran.unwrap();

        assert_eq!(theirs.len(), 8, "libzmq's reply is eight frames");
        assert_eq!(ours, theirs, "the STATISTICS replies differ");
        let stats = Statistics::from_message(&ours).unwrap();
        // [id, "", body]: "alpha asks i" is 12 bytes, "bravo-client asks i" 19.
        let requests = 10 * (5 + 12) + 10 * (12 + 19);
        assert_eq!(stats.frontend.messages_in, 20);
        assert_eq!(stats.frontend.bytes_in, requests);
        assert_eq!(stats.backend.messages_out, 20);
        assert_eq!(stats.backend.bytes_out, requests);
        assert_eq!(stats.backend.messages_in, 20);
        assert_eq!(stats.backend.bytes_in, requests + 20 * 2);
        assert_eq!(stats.frontend.messages_out, 20);
    })
    .await
}
