//! rsslab-workload: the native workloads in one static binary, chosen by the name it is called
//! as (`/bin/heap-churn ARGS_JSON`) or by its first argument (`rsslab-workload heap-churn
//! ARGS_JSON`). See [`rsslab_agent::workloads`].

use rsslab_agent::workloads;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (name, json) = match workloads::select(&argv) {
        Ok(selected) => selected,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    std::process::exit(workloads::dispatch(&name, &json));
}
