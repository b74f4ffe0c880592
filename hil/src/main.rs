mod duration;
mod scenario;
mod toml_file;
fn main() {}
