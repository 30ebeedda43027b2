//! What every run tells ops besides its report: the metrics (one EMF log line, in Lambda)
//! and, when `EVENT_BUS_NAME` is set, the run event on EventBridge.

use crate::aws::eventbridge::{Events, PutOutcome};
use crate::report::event::RunEvent;
use crate::report::{metrics, RunReport};

/// Where a run's metrics and event go.
#[derive(Debug)]
pub struct Announcer<V> {
    /// `AWS_LAMBDA_FUNCTION_NAME`: metrics are emitted only inside Lambda.
    function_name: Option<String>,
    /// `EVENT_BUS_NAME` (a name or an ARN) and the client that puts events on it.
    bus: Option<(String, V)>,
}

impl<V: Events> Announcer<V> {
    /// An announcer for this function (None outside Lambda) and bus (None: no events).
    pub fn new(function_name: Option<String>, bus: Option<(String, V)>) -> Self {
        Self { function_name, bus }
    }

    /// Prints the metrics line and puts the run event. Returns whether the event was
    /// published (None without a bus). A failure is logged, never raised: the run is done
    /// and its report stands.
    pub async fn announce(&self, report: &RunReport) -> Option<bool> {
        if let Some(function_name) = &self.function_name {
            // Lambda sends stderr to CloudWatch Logs like stdout; the CLI keeps stdout for
            // the report.
            eprintln!("{}", metrics::emf_line(report, function_name));
        }
        let (bus, events) = self.bus.as_ref()?;
        let event = match RunEvent::new(report, report.safety_stop.is_some()) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "run event not built");
                return Some(false);
            }
        };
        let detail_type = event.detail_type;
        let published = match events.put_event(bus, detail_type, &event.detail).await {
            Ok(PutOutcome::Published) => true,
            Ok(PutOutcome::Failed { code, message }) => {
                tracing::error!(bus, code, message, "run event refused by EventBridge");
                false
            }
            Err(e) => {
                tracing::error!(bus, error = %e, "run event not published");
                false
            }
        };
        if published {
            tracing::info!(bus, detail_type, "run event published");
        }
        Some(published)
    }
}
