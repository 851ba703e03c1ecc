//! The integration tests, linked as one binary (one module per area; `cargo test -p
//! moodb-tests --test it MODULE::` runs one). None needs a process of its own: no test sets
//! an environment variable or other process-wide state of the test process (failpoints go to
//! the server's environment only), and every server is its own process on 127.0.0.1:0 with
//! its own temporary directory.

mod abuse;
mod architecture;
mod auth;
mod clients_redis;
mod cluster;
mod cluster_faults;
mod cluster_membership;
mod cluster_sentinel;
mod cluster_snapshot;
mod command_table_redis;
mod commands_redis;
mod databases;
mod differential_random;
mod expiry;
mod failing_storage;
mod info_config;
mod info_config_redis;
mod limits;
mod linearizability_checker;
mod linearizability_moodb;
mod linearizability_redis;
mod placement;
mod pubsub;
mod raft_cluster;
mod raft_network;
mod raft_storage;
mod ready_file;
mod real_clients;
mod resp3;
mod server_commands;
mod server_durability;
mod server_tools;
mod server_transactions;
mod spill;
