//! Routing by Host, tags, traffic split, concurrency, the activator queue, timeouts and
//! instance failures, through a real router and fake instances on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hyper::Response;
use router::{Event, NO_INSTANCE_MESSAGE};

#[tokio::test]
async fn routes_by_host_and_tag() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[("blue", "hello-2")]);
    h.instance("hello-1", "a", named("one").await, 10);
    h.instance("hello-2", "b", named("two").await, 10);

    for host in [
        "hello.localhost",
        "HELLO.localhost:8080",
        "hello.local.localhost",
    ] {
        let (status, _, body) = get(&h, host, "/").await;
        assert_eq!((status, body.as_str()), (200, "one"), "{host}");
    }
    let (status, _, body) = get(&h, "blue---hello.localhost:8080", "/").await;
    assert_eq!((status, body.as_str()), (200, "two"));
    let (status, _, body) = get(&h, "nope.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(!body.is_empty() && body.len() < 200, "{body}");
}

#[tokio::test]
async fn traffic_split_follows_percentages() {
    let h = start().await;
    h.route("hello", &[("hello-1", 30), ("hello-2", 70)], &[]);
    h.instance("hello-1", "a", named("one").await, 100);
    h.instance("hello-2", "b", named("two").await, 100);
    let n = 600;
    let mut ones = 0;
    for _ in 0..n {
        let (status, _, body) = get(&h, "hello.localhost", "/").await;
        assert_eq!(status, 200);
        ones += (body == "one") as usize;
    }
    // 30 % of 600 is 180; the seeded RNG lands well inside a wide band.
    assert!((130..230).contains(&ones), "{ones} of {n} went to hello-1");
}

#[tokio::test]
async fn concurrency_one_is_strictly_serial() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n2, m2) = (now.clone(), max.clone());
    let addr = upstream(handler(move |_| {
        let (now, max) = (n2.clone(), m2.clone());
        async move {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Response::new(router::body::full("ok"))
        }
    }))
    .await;
    h.instance("hello-1", "a", addr, 1);
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            get(&h, "hello.localhost", "/").await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(max.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn queued_request_is_served_when_an_instance_arrives() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.revision("hello-1", |_| {});
    let router = h.router.clone();
    let addr = h.addr;
    let waiting = tokio::spawn(async move {
        let c = client();
        let req = hyper::Request::get(format!("http://{addr}/"))
            .header("host", "hello.localhost")
            .body(Default::default())
            .unwrap();
        let resp = c.request(req).await.unwrap();
        resp.status().as_u16()
    });
    // Demand is reported as soon as the request queues.
    loop {
        let stats = router.pools().get("hello-1").unwrap().stats();
        if stats.queued == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!waiting.is_finished());
    h.instance("hello-1", "a", named("one").await, 1);
    assert_eq!(waiting.await.unwrap(), 200);
}

#[tokio::test]
async fn demand_event_on_queue_arrival() {
    let mut h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let addr = h.addr;
    let waiting = tokio::spawn(async move {
        let c = client();
        let req = hyper::Request::get(format!("http://{addr}/"))
            .header("host", "hello.localhost")
            .body(Default::default())
            .unwrap();
        c.request(req).await.unwrap().status().as_u16()
    });
    let e = h.event(|e| matches!(e, Event::Demand(_))).await;
    let Event::Demand(d) = e else { unreachable!() };
    assert_eq!((&*d.revision, d.queued, d.in_flight), ("hello-1", 1, 0));
    h.instance("hello-1", "a", named("one").await, 1);
    assert_eq!(waiting.await.unwrap(), 200);
    let busy = h
        .event(|e| matches!(e, Event::InstanceBusy { busy: true, .. }))
        .await;
    assert!(matches!(busy, Event::InstanceBusy { ref instance, .. } if &**instance == "a"));
}

#[tokio::test]
async fn queue_timeout_is_429() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.revision("hello-1", |s| {
        s.queue_timeout = Some(Duration::from_millis(100))
    });
    let (status, _, body) = get(&h, "hello.localhost", "/").await;
    assert_eq!((status, body.as_str()), (429, NO_INSTANCE_MESSAGE));
    assert_eq!(h.router.pools().get("hello-1").unwrap().stats().queued, 0);
}

#[tokio::test]
async fn queue_wait_has_a_configurable_floor() {
    let h = start_with(router::QueueConfig {
        min_wait: Duration::from_millis(100),
        startup_factor: 3.5,
    })
    .await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let (status, _, _) = get(&h, "hello.localhost", "/").await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn request_timeout_is_504_and_counts_from_arrival() {
    let h = start().await;
    h.route("hello", &[("slow", 100)], &[("queued", "empty")]);
    h.revision("slow", |s| s.timeout = Duration::from_millis(200));
    // Queueing counts: a timeout shorter than the queue wait gives 504, not 429.
    h.revision("empty", |s| s.timeout = Duration::from_millis(200));
    let slow = upstream(handler(|_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Response::new(router::body::full("late"))
    }))
    .await;
    h.instance("slow", "a", slow, 10);
    assert_eq!(get(&h, "hello.localhost", "/").await.0, 504);
    assert_eq!(get(&h, "queued---hello.localhost", "/").await.0, 504);
    // The slot was given back.
    assert_eq!(h.router.pools().get("slow").unwrap().stats().in_flight, 0);
}

#[tokio::test]
async fn instance_failure_is_503_and_reported() {
    let mut h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    // A port nobody listens on any more.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    h.instance("hello-1", "dead", dead, 1);
    assert_eq!(get(&h, "hello.localhost", "/").await.0, 503);
    let e = h.event(|e| matches!(e, Event::InstanceFailed { .. })).await;
    assert!(matches!(e, Event::InstanceFailed { ref instance, .. } if &**instance == "dead"));
    assert_eq!(
        h.router.pools().get("hello-1").unwrap().stats().instances,
        0
    );
}

#[tokio::test]
async fn instance_crash_mid_request_is_503() {
    let mut h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        drop(s); // closes without a response, like a crashed process
    });
    h.instance("hello-1", "crashy", addr, 1);
    assert_eq!(get(&h, "hello.localhost", "/").await.0, 503);
    h.event(|e| matches!(e, Event::InstanceFailed { .. })).await;
}

#[tokio::test]
async fn drained_instance_finishes_in_flight_and_gets_no_more() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.revision("hello-1", |s| {
        s.queue_timeout = Some(Duration::from_millis(100))
    });
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let addr = upstream(handler(move |_| {
        let mut rx = release_rx.clone();
        async move {
            let _ = rx.wait_for(|r| *r).await;
            Response::new(router::body::full("done"))
        }
    }))
    .await;
    h.instance("hello-1", "a", addr, 5);
    let h = Arc::new(h);
    let h2 = h.clone();
    let first = tokio::spawn(async move { get(&h2, "hello.localhost", "/").await });
    while h.router.pools().get("hello-1").unwrap().stats().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain = h.router.pools().remove_instance("hello-1", "a").unwrap();
    assert_eq!(
        get(&h, "hello.localhost", "/").await.0,
        429,
        "out of routing"
    );
    release_tx.send(true).unwrap();
    let (status, _, body) = first.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "done"));
    drain.wait().await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_in_flight() {
    let router = router::Router::new(router::RouterOptions::default(), Arc::new(router::NoEvents));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(router.clone().serve(listener, router::Scheme::Http, async {
        let _ = stop_rx.await;
    }));
    router.table().store(router::RoutingTable::new(
        "localhost",
        "local",
        [router::ServiceRoutes {
            project: "local".into(),
            service: "hello".into(),
            traffic: vec![router::TrafficTarget {
                revision: "r".into(),
                percent: 100,
            }],
            tags: vec![],
            access: router::Access::public(),
        }],
    ));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let up = upstream(handler(move |_| {
        let mut rx = release_rx.clone();
        async move {
            let _ = rx.wait_for(|r| *r).await;
            Response::new(router::body::full("done"))
        }
    }))
    .await;
    router.pools().add_instance(
        "r",
        router::Endpoint {
            id: "a".into(),
            addr: up,
            concurrency: 1,
            end: Default::default(),
        },
    );
    let in_flight = tokio::spawn(async move {
        let req = hyper::Request::get(format!("http://{addr}/"))
            .header("host", "hello.localhost")
            .body(Default::default())
            .unwrap();
        let resp = client().request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, body)
    });
    while router.pools().get("r").unwrap().stats().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!served.is_finished(), "waits for the in-flight request");
    release_tx.send(true).unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"done"[..]));
    served.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
