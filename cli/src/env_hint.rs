//! Clap names the flag of a bad value but not the environment variable it came from; an
//! operator who never typed the flag is told which variable to fix.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Clap's refusal of `argv`, with the environment variable named when the bad value came
/// from one. Prints it and gives the exit code (2), like `clap::Error::exit` does.
pub fn report(e: &clap::Error, command: &clap::Command, argv: &[String]) -> i32 {
    let text = e.render().to_string();
    match from_environment(e, command, argv) {
        Some(var) => {
            let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
            eprint!("{first} (the value of {var})\n{rest}");
        }
        None => eprint!("{text}"),
    }
    e.exit_code()
}

/// The environment variable behind a refused value, when the flag was not given.
fn from_environment(e: &clap::Error, command: &clap::Command, argv: &[String]) -> Option<String> {
    if !matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next()?;
    let given = argv
        .iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    if given {
        return None;
    }
    env_of(command, flag.trim_start_matches("--"))
}

fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|s| env_of(s, long)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn command() -> Command {
        Command::new("t").subcommand(
            Command::new("sub").arg(
                Arg::new("budget")
                    .long("budget")
                    .env("T_BUDGET")
                    .value_parser(clap::value_parser!(u32)),
            ),
        )
    }

    #[test]
    fn names_the_variable_only_when_the_flag_was_not_given() {
        let argv = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        let typed = argv(&["t", "sub", "--budget", "x"]);
        let e = command()
            .try_get_matches_from(&typed)
            .expect_err("x is not a number");
        assert_eq!(from_environment(&e, &command(), &typed), None);
        let bare = argv(&["t", "sub"]);
        let e = command()
            .try_get_matches_from(argv(&["t", "sub", "--budget=y"]))
            .expect_err("y is not a number");
        assert_eq!(
            from_environment(&e, &command(), &bare).as_deref(),
            Some("T_BUDGET")
        );
    }
}
