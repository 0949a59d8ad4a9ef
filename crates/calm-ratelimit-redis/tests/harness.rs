//! Checks the test harness itself: a Redis server starts, dies and restarts on demand, and a
//! three-node cluster forms.

mod support;

use std::net::TcpStream;
use support::{RedisCluster, RedisServer};

#[test]
fn server_starts_without_persistence_and_cleans_up() {
    let mut server = RedisServer::start();
    assert!(server.is_running());
    assert_eq!(server.command(&["PING"]), "PONG");
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
    // `save ""`: no snapshots.
    assert_eq!(server.command(&["CONFIG", "GET", "save"]), "save");
    assert_eq!(
        server.command(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );

    let dir = server.dir().to_owned();
    assert!(dir.is_dir());
    drop(server);
    assert!(!dir.exists(), "{} outlived its server", dir.display());
}

#[test]
fn kill_refuses_connections_and_restart_keeps_the_port_but_not_the_data() {
    let mut server = RedisServer::start();
    let port = server.port();
    assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    assert_eq!(server.command(&["DBSIZE"]), "1");

    server.kill();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(server.command(&["PING"]), "");

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(server.command(&["GET", "k"]), "");
    assert_eq!(server.command(&["DBSIZE"]), "0");

    // Restarting a running server works too.
    server.command(&["SET", "k", "v"]);
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.command(&["DBSIZE"]), "0");
}

#[test]
fn cluster_forms() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.urls().len(), 3);
    assert_eq!(cluster.command(&["SET", "{a}x", "1"]), "OK");
    assert_eq!(cluster.command(&["GET", "{a}x"]), "1");
    assert_eq!(cluster.dbsize_total(), 1);
}
