fn main() { eprintln!("virtual-m5stickc: not implemented yet"); std::process::exit(2) }
