//! Helpers for the integration tests: start a real `moodb serve` on 127.0.0.1 with a temporary
//! data directory ([`server::TestServer`], built on [`server::Launch`]), or a real redis-server
//! to compare with ([`redis_server::RedisServer`]), a raft cluster of real servers
//! ([`cluster::TestCluster`]), and check histories recorded against it
//! ([`linearizability`]).

pub mod cluster;
pub mod linearizability;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod redis_server;
pub mod server;

pub use cluster::{ClusterNode, TestCluster};
pub use process::Process;
pub use server::{
    moodb_binary, HarnessError, Launch, Launched, Ready, ReadyRecovery, Running, ServerOptions,
    TestServer,
};

/// Whether `program` can be run from PATH (for tests that use redis-cli or redis-benchmark).
pub fn have_program(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Sends one command given as words (`&["SET", "k", "v"]`) and converts its reply.
pub fn query<T: redis::FromRedisValue>(
    con: &mut redis::Connection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let Some((name, rest)) = args.split_first() else {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "empty command",
        )));
    };
    let mut c = redis::cmd(name);
    for a in rest {
        c.arg(*a);
    }
    c.query(con)
}
