fn main() { eprintln!("p1-sim: not implemented yet"); std::process::exit(2) }
