//! The CRI harnesses do what the proxy's tests rely on: containerd pulls
//! from the test registry through CRI (also through a mirror that points
//! elsewhere) and keeps its images across a restart; the fake runtime sees
//! exact bytes and answers exactly as configured.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use criguard_testutil::cri::{self, v1};
use criguard_testutil::grpc::{self, GRPC_OK};
use criguard_testutil::{
    Containerd, FakeRuntime, Pushed, Registry, grpc_call_raw, grpc_call_raw_blocking,
    grpc_call_raw_body, push_test_image, test_image,
};

const PULL: &str = "/runtime.v1.ImageService/PullImage";
const STREAM_IMAGES: &str = "/runtime.v1.ImageService/StreamImages";
const CREATE: &str = "/runtime.v1.RuntimeService/CreateContainer";

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The host-wide places a stray containerd would write to.
const GLOBAL_PATHS: [&str; 4] = [
    "/var/lib/containerd",
    "/run/containerd",
    "/opt/containerd",
    "/etc/cni",
];

async fn pull(socket: &Path, image: &str) -> String {
    let mut client = cri::image_client(cri::connect(socket).await);
    client
        .pull_image(cri::pull_request(image))
        .await
        .unwrap_or_else(|e| panic!("pulling {image}: {e}"))
        .into_inner()
        .image_ref
}

/// containerd's image ID is the config digest.
fn config_digest(content: &str) -> String {
    test_image(content).config.digest
}

fn digest_ref(pushed: &Pushed) -> String {
    format!("{}@{}", pushed.name(), pushed.digest)
}

#[test]
fn containerd_pulls_through_cri_and_keeps_images_across_restart() {
    let existed: Vec<bool> = GLOBAL_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    let registry = Registry::start();
    let pushed = push_test_image(&registry, "test/app", "v1", "content");
    assert_eq!(pushed.digest, test_image("content").digest());

    let mut containerd = Containerd::start(&[(&registry.host(), &registry.host())]);
    let pid = containerd.pid().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "containerd");
    let socket = containerd.socket().to_path_buf();
    assert!(
        socket.starts_with(std::env::temp_dir()),
        "{}",
        socket.display()
    );

    let rt = tokio();
    rt.block_on(async {
        let version = cri::runtime_client(cri::connect(&socket).await)
            .version(v1::VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(version.runtime_name, "containerd");
        assert_eq!(version.runtime_api_version, "v1");

        assert!(cri::image_status(&socket, &pushed.by_tag()).await.is_none());
        let image_ref = pull(&socket, &pushed.by_tag()).await;
        assert_eq!(image_ref, config_digest("content"));
        let image = cri::image_status(&socket, &pushed.by_tag()).await.unwrap();
        assert_eq!(image.id, image_ref);
        assert_eq!(image.repo_tags, vec![pushed.by_tag()]);
        assert_eq!(image.repo_digests, vec![digest_ref(&pushed)]);
        assert!(image.size > 0);
        // By digest, the name kubelet hands CreateContainer after a pull.
        let by_digest = cri::image_status(&socket, &pushed.by_digest())
            .await
            .unwrap();
        assert_eq!(by_digest.id, image_ref);
    });
    assert!(
        containerd.log().contains("PullImage"),
        "containerd's log is captured:\n{}",
        containerd.log()
    );

    containerd.stop();
    assert!(!pid_alive(pid), "containerd {pid} survived stop");
    assert!(!socket.exists(), "containerd left its socket behind");
    rt.block_on(async {
        assert!(cri::try_connect(&socket).await.is_err());
    });

    containerd.start_again();
    let new_pid = containerd.pid().unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(containerd.socket(), socket);
    rt.block_on(async {
        let image = cri::image_status(&socket, &pushed.by_tag()).await.unwrap();
        assert_eq!(image.id, config_digest("content"));
        assert_eq!(image.repo_digests, vec![digest_ref(&pushed)]);
        let list = cri::image_client(cri::connect(&socket).await)
            .list_images(v1::ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.images.len(), 1, "{list:?}");
        assert_eq!(list.images[0].id, image.id);
    });

    drop(containerd);
    assert!(!pid_alive(new_pid), "containerd {new_pid} survived Drop");
    for (path, existed) in GLOBAL_PATHS.iter().zip(existed) {
        assert!(
            existed || !Path::new(path).exists(),
            "containerd created {path}"
        );
    }
}

#[test]
fn containerd_mirror_pulls_from_the_endpoint_not_the_named_registry() {
    let named = Registry::start();
    let other = Registry::start();
    let original = push_test_image(&named, "test/app", "v1", "original");
    let moved = push_test_image(&other, "test/app", "v1", "moved");
    assert_ne!(original.digest, moved.digest);

    // References name `named`; containerd fetches from `other`.
    let containerd = Containerd::start(&[(&named.host(), &other.url())]);
    let socket = containerd.socket().to_path_buf();
    let rt = tokio();
    rt.block_on(async {
        let image_ref = pull(&socket, &original.by_tag()).await;
        assert_eq!(image_ref, config_digest("moved"));
        let image = cri::image_status(&socket, &original.by_tag())
            .await
            .unwrap();
        // Named by the reference's host, with the other registry's digest.
        assert_eq!(
            image.repo_digests,
            vec![format!("{}@{}", original.name(), moved.digest)]
        );
    });

    // The hosts dir is read on every pull: re-pointing needs no restart.
    containerd.mirror(&named.host(), &named.host());
    rt.block_on(async {
        let image_ref = pull(&socket, &original.by_tag()).await;
        assert_eq!(image_ref, config_digest("original"));
        let image = cri::image_status(&socket, &original.by_tag())
            .await
            .unwrap();
        assert_eq!(image.repo_digests, vec![digest_ref(&original)]);
    });
}

/// `PullImageRequest{image: {image: "x"}}` plus field 99 (varint 1), which
/// no CRI version defines: prost would drop it on a re-encode.
fn pull_request_with_unknown_field() -> Vec<u8> {
    let mut bytes = grpc::encode(&cri::pull_request("127.0.0.1:1/x:y"));
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    let decoded: v1::PullImageRequest = grpc::decode(&bytes);
    assert_eq!(grpc::encode(&decoded).len(), bytes.len() - 3);
    bytes
}

#[test]
fn fake_runtime_records_exact_bytes_and_answers_unconfigured_paths_with_ok() {
    let fake = FakeRuntime::start();
    let message = pull_request_with_unknown_field();
    let response = grpc_call_raw_blocking(fake.socket(), PULL, &message);
    assert_eq!(response.http_status, 200);
    assert_eq!(response.grpc_status, Some(GRPC_OK));
    assert_eq!(response.body, vec![0, 0, 0, 0, 0], "one empty message");
    assert_eq!(response.message(), Vec::<u8>::new());

    // Unknown services and methods are accepted and recorded too.
    let unknown = grpc_call_raw_blocking(fake.socket(), "/runtime.v9.Nope/Nothing", b"\x08\x01");
    assert_eq!(unknown.grpc_status, Some(GRPC_OK));

    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].path, PULL);
    assert_eq!(calls[0].body, grpc::frame(&message));
    assert_eq!(&calls[0].body[..5], &[0, 0, 0, 0, message.len() as u8]);
    assert_eq!(calls[0].messages(), vec![message]);
    assert_eq!(calls[0].headers["content-type"], "application/grpc");
    assert_eq!(calls[0].headers["te"], "trailers");
    let decoded: v1::PullImageRequest = calls[0].decode();
    assert_eq!(decoded.image.unwrap().image, "127.0.0.1:1/x:y");
    assert_eq!(calls[1].path, "/runtime.v9.Nope/Nothing");
    assert_eq!(calls[1].body, b"\x00\x00\x00\x00\x02\x08\x01");
    assert_eq!(fake.calls_to(PULL).len(), 1);

    // A body sent exactly as given, broken framing and all.
    let broken = tokio().block_on(grpc_call_raw_body(
        fake.socket(),
        CREATE,
        &[("grpc-encoding", "gzip")],
        vec![1, 0, 0, 0, 9, 1],
    ));
    assert_eq!(broken.grpc_status, Some(GRPC_OK));
    let create = &fake.calls_to(CREATE)[0];
    assert_eq!(create.body, vec![1, 0, 0, 0, 9, 1]);
    assert_eq!(create.headers["grpc-encoding"], "gzip");
    assert!(grpc::try_unframe(&create.body).is_err());
    fake.clear_calls();
    assert!(fake.calls().is_empty());
}

#[test]
fn fake_runtime_serves_generated_clients_and_streams_frames() {
    let fake = FakeRuntime::start();
    fake.respond(
        PULL,
        vec![grpc::encode(&v1::PullImageResponse {
            image_ref: "sha256:feed".to_string(),
        })],
    );
    let images = |id: &str| v1::StreamImagesResponse {
        images: vec![v1::Image {
            id: id.to_string(),
            ..Default::default()
        }],
    };
    fake.respond(
        STREAM_IMAGES,
        vec![
            grpc::encode(&images("a")),
            grpc::encode(&images("b")),
            grpc::encode(&images("c")),
        ],
    );
    tokio().block_on(async {
        let image_ref = pull(fake.socket(), "127.0.0.1:1/x:y").await;
        assert_eq!(image_ref, "sha256:feed");

        let mut client = cri::image_client(cri::connect(fake.socket()).await);
        let mut stream = client
            .stream_images(v1::StreamImagesRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut ids = Vec::new();
        while let Some(response) = stream.message().await.unwrap() {
            ids.push(response.images[0].id.clone());
        }
        assert_eq!(ids, ["a", "b", "c"]);

        let raw = grpc_call_raw(fake.socket(), STREAM_IMAGES, &[]).await;
        assert_eq!(raw.grpc_status, Some(GRPC_OK));
        assert_eq!(raw.trailers["grpc-status"], "0");
        assert_eq!(raw.messages().len(), 3);
        assert_eq!(raw.messages()[1], grpc::encode(&images("b")));
    });
    // What tonic sent is what the fake recorded: an empty request is one
    // empty frame.
    assert_eq!(fake.calls_to(STREAM_IMAGES)[0].body, vec![0, 0, 0, 0, 0]);
}

#[test]
fn fake_runtime_returns_configured_errors() {
    let fake = FakeRuntime::start();
    fake.fail(PULL, 7, "denied: 100% ünsigned");
    let raw = grpc_call_raw_blocking(fake.socket(), PULL, &[]);
    assert_eq!(raw.http_status, 200);
    assert_eq!(raw.grpc_status, Some(7));
    assert_eq!(raw.grpc_message.as_deref(), Some("denied: 100% ünsigned"));
    assert!(raw.body.is_empty(), "trailers-only");
    assert_eq!(raw.headers["grpc-message"], "denied: 100%25 %C3%BCnsigned");

    tokio().block_on(async {
        let status = cri::image_client(cri::connect(fake.socket()).await)
            .pull_image(cri::pull_request("127.0.0.1:1/x:y"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "denied: 100% ünsigned");
    });
    // A reply can be replaced.
    fake.respond(PULL, vec![b"\x0a\x01z".to_vec()]);
    assert_eq!(
        grpc_call_raw_blocking(fake.socket(), PULL, &[]).message(),
        b"\x0a\x01z"
    );
}

#[test]
fn fake_runtime_stops_and_starts_again_on_the_same_socket() {
    let mut fake = FakeRuntime::start();
    fake.fail(CREATE, 14, "down");
    grpc_call_raw_blocking(fake.socket(), CREATE, b"\x0a\x00");
    let socket = fake.socket().to_path_buf();

    let rt = tokio();
    // A channel opened before the stop sees the runtime go away.
    let channel = rt.block_on(cri::connect(&socket));
    fake.stop();
    assert!(!fake.is_running());
    assert!(!socket.exists());
    rt.block_on(async {
        assert!(cri::try_connect(&socket).await.is_err());
        let status = cri::runtime_client(channel.clone())
            .version(v1::VersionRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    });

    fake.start_again();
    assert!(fake.is_running());
    let raw = grpc_call_raw_blocking(&socket, CREATE, b"\x0a\x00");
    assert_eq!(raw.grpc_status, Some(14), "replies survive a restart");
    assert_eq!(fake.calls_to(CREATE).len(), 2, "calls survive a restart");
}

/// The server side is generated with default stubs: a test server
/// implements only what it needs, the rest answers Unimplemented.
#[test]
fn generated_servers_have_default_stubs() {
    struct Empty;
    #[tonic::async_trait]
    impl v1::image_service_server::ImageService for Empty {}
    let _ = v1::image_service_server::ImageServiceServer::new(Empty);
}
