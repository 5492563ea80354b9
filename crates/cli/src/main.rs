//! `immich-db`: deploy the database layer of Immich.

fn main() {
    println!("immich-db");
}
