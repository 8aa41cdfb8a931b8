//! The `datamigrate` command line.

use clap::{Parser, Subcommand};

/// DataMigrate: SQL Server to dbt, as a Kubernetes operator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Migration CRD as YAML.
    Crd,
    /// Run a Migration's steps on this machine, without a cluster.
    Run(datamigrate::local::RunArgs),
    /// Translate a T-SQL script to a target dialect (the migration's own translation).
    Translate(datamigrate::local::TranslateArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match datamigrate::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Run(args) => run_local(args),
        Command::Translate(args) => datamigrate::local::translate(&args),
    }
}

fn run_local(args: datamigrate::local::RunArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(datamigrate::local::run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", datamigrate::local::error_chain(&e));
            std::process::ExitCode::from(2)
        }
    }
}
