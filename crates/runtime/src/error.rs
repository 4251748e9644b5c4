/// What starting, running or stopping an instance can fail with; each names the problem.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Invalid(String),
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A container of an instance did not become ready.
    #[error("container {container} did not become ready: {reason}{}", logs_suffix(.last_logs))]
    NotReady {
        container: String,
        reason: String,
        /// Its last log lines, oldest first.
        last_logs: Vec<String>,
    },
    #[error(transparent)]
    Image(#[from] image::ImageError),
}

pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.map_err(|source| RuntimeError::Io {
            context: what(),
            source,
        })
    }
}

fn logs_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last log lines:\n  {}", lines.join("\n  "))
    }
}
