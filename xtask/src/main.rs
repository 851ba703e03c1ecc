//! `cargo xtask`: project automation (crash-test, ci).

fn main() {
    println!("xtask");
}
