fn main() { eprintln!("cargo hil: not implemented yet"); std::process::exit(2) }
