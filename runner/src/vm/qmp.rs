//! A QMP client on the socket QEMU inherits (`-mon chardev=qmp,mode=control`): the handful of
//! commands a snapshot needs (`stop`, `migrate`, `query-migrate`, `query-status`, `cont`).
//!
//! QMP is JSON Lines both ways: a greeting, then one reply per command, with asynchronous
//! events (`{"event": ...}`) interleaved, which are skipped. Every read has a timeout, so a
//! QEMU that stops answering fails the command instead of stalling the run's deadline loop.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Longest wait for one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A connected QMP session, capabilities negotiated.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Reads QEMU's greeting on `stream` and leaves capabilities negotiation mode.
    pub fn connect(stream: UnixStream) -> Result<Qmp> {
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .context("setting the QMP socket's timeout")?;
        let writer = stream.try_clone().context("duplicating the QMP socket")?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            bail!("QEMU's monitor did not greet with QMP: {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` and returns its `return` value; a QMP `error` is an
    /// error naming the command and QEMU's description.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let request = json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{request}").with_context(|| format!("sending QMP {command}"))?;
        loop {
            let message = self
                .read_message()
                .with_context(|| format!("waiting for QEMU's reply to {command}"))?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let description = error
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("no description");
                bail!("QMP {command} failed: {description}");
            }
            // An event: not the reply.
        }
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).context("reading QMP")? == 0 {
            bail!("QEMU closed its monitor (it exited)");
        }
        serde_json::from_str(&line).with_context(|| format!("parsing QMP line {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake QEMU monitor: greets, then answers each request with the next scripted lines;
    /// the request after the last is read and left unanswered, the socket closed.
    fn fake_monitor(replies: Vec<&'static str>) -> (Qmp, std::thread::JoinHandle<Vec<Value>>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let monitor = std::thread::spawn(move || {
            let mut writer = theirs.try_clone().unwrap();
            let mut reader = BufReader::new(theirs);
            writeln!(
                writer,
                r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#
            )
            .unwrap();
            let mut requests = Vec::new();
            let mut replies = std::iter::once(r#"{"return": {}}"#).chain(replies);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                requests.push(serde_json::from_str::<Value>(&line).unwrap());
                // Out of replies: close without answering, as a QEMU that exits.
                let Some(reply) = replies.next() else { break };
                writeln!(writer, "{reply}").unwrap();
            }
            requests
        });
        (Qmp::connect(ours).unwrap(), monitor)
    }

    #[test]
    fn replies_are_returned_events_skipped_and_errors_named() {
        let (mut qmp, monitor) = fake_monitor(vec![
            "{\"event\": \"STOP\", \"timestamp\": {}}\n{\"return\": {\"status\": \"paused\"}}",
            r#"{"error": {"class": "GenericError", "desc": "no migration in progress"}}"#,
        ]);
        let status = qmp.execute("query-status", json!({})).unwrap();
        assert_eq!(status["status"], "paused");
        let error = qmp
            .execute("migrate_cancel", json!({}))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "QMP migrate_cancel failed: no migration in progress");
        drop(qmp);
        let requests = monitor.join().unwrap();
        assert_eq!(requests[0]["execute"], "qmp_capabilities");
        assert_eq!(requests[1]["execute"], "query-status");
        assert_eq!(requests[2]["execute"], "migrate_cancel");
    }

    #[test]
    fn a_monitor_that_closes_is_an_error_not_a_hang() {
        let (mut qmp, monitor) = fake_monitor(Vec::new());
        let error = format!("{:#}", qmp.execute("stop", json!({})).unwrap_err());
        assert!(error.contains("QEMU closed its monitor"), "{error}");
        monitor.join().unwrap();
    }
}
