use ferromq::{Message, Pair, Pull, Push};
use std::time::Duration;
use tokio::time::timeout;

#[tokio::test]
async fn push_pull_tcp_roundtrip() {
    timeout(Duration::from_secs(10), async {
        let pull = Pull::new();
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&ep).unwrap();
        for i in 0..10_000u32 {
            push.send(i.to_be_bytes().to_vec()).await.unwrap();
        }
        for i in 0..10_000u32 {
            let m = pull.recv().await.unwrap();
            assert_eq!(&m.frames()[0][..], &i.to_be_bytes());
        }
        let multi: Message = ["a", "", "c"].into_iter().collect();
        push.send(multi.clone()).await.unwrap();
        assert_eq!(pull.recv().await.unwrap(), multi);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_ipc_roundtrip() {
    timeout(Duration::from_secs(10), async {
        let path = format!("ipc:///tmp/ferromq-smoke-{}.sock", std::process::id());
        let a = Pair::new();
        a.bind(path.as_str()).unwrap();
        let b = Pair::new();
        b.connect(path.as_str()).unwrap();
        b.send("ping").await.unwrap();
        assert_eq!(a.recv().await.unwrap().frames()[0], "ping");
        a.send("pong").await.unwrap();
        assert_eq!(b.recv().await.unwrap().frames()[0], "pong");
    })
    .await
    .unwrap();
}
