//! The download fallback of the data search, against a loopback mirror. One test in its own
//! binary, because it changes environment variables (HOME, the data and mirror variables).

mod common;

use std::io::{Read, Write};

use sae_dsl::data::{self, DataError};

#[test]
fn missing_data_is_downloaded_and_verified() {
    let home = common::tempdir("home");
    // Isolate the search path: no data variable, an empty HOME cache, downloads allowed.
    std::env::set_var("HOME", &home);
    std::env::remove_var(data::DATA_ENV);
    std::env::remove_var(data::OFFLINE_ENV);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let served = std::thread::spawn(move || {
        let mut paths = vec![];
        if let Some(Ok(mut s)) = listener.incoming().next() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            paths.push(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
            let body = b"not the real MNIST file";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
        paths
    });
    std::env::set_var(data::MIRROR_ENV, format!("http://{addr}/mnist"));

    let r = data::find_file("mnist", "t10k-labels-idx1-ubyte.gz", None);
    let requests = served.join().expect("server thread");
    assert_eq!(requests.len(), 1, "one download attempt");
    assert!(
        requests[0].contains("GET /mnist/t10k-labels-idx1-ubyte.gz"),
        "{requests:?}"
    );
    match r {
        Err(DataError::NotFound { help, .. }) => {
            assert!(help.contains("checksum mismatch"), "{help}");
            assert!(
                help.contains("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
                "{help}"
            );
            assert!(
                help.contains(".cache/sae-dsl/data/mnist"),
                "the searched folders are listed: {help}"
            );
        }
        other => panic!(
            "expected an error, got {:?}",
            other.map(|p| p.display().to_string())
        ),
    }
    assert!(
        !home
            .join(".cache/sae-dsl/data/mnist/t10k-labels-idx1-ubyte.gz")
            .exists(),
        "a bad download is not kept"
    );

    // Offline: no request at all, and the error says where it looked.
    std::env::set_var(data::OFFLINE_ENV, "1");
    let r = data::find_file("mnist", "t10k-labels-idx1-ubyte.gz", None);
    assert!(matches!(r, Err(DataError::NotFound { .. })));
    let _ = std::fs::remove_dir_all(home);
}
