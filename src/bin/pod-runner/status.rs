//! What the runner knows about a pod's containers, and the `PodStatus` it writes from that.
//! Pure: the clock is a parameter.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The address every pod gets: processes share the host's network.
pub const POD_IP: &str = "127.0.0.1";

/// A pod's phase, as in `PodStatus.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not all init containers have succeeded, or no container has started.
    Pending,
    /// At least one container runs or is being restarted.
    Running,
    /// Every container ended with exit status 0 and will not be restarted.
    Succeeded,
    /// A container failed and will not be restarted.
    Failed,
}

impl Phase {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    /// Succeeded or Failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart every container that ends (Deployments).
    Always,
    /// Restart containers that end with a non-zero status.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// From the spec field; the API server defaults it to `Always`.
    pub fn from_spec(value: Option<&str>) -> Self {
        match value {
            Some("Never") => Self::Never,
            Some("OnFailure") => Self::OnFailure,
            _ => Self::Always,
        }
    }

    /// Whether a container that ended with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }
}

/// How a container run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The exit status; 128 + n for a process killed by signal n.
    pub exit_code: i32,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `StartError` or a runner reason.
    pub reason: String,
    /// The termination message.
    pub message: Option<String>,
    /// When the process started, if it did.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Timestamp,
}

impl Exit {
    /// An exit with the usual reason for its status.
    pub fn new(exit_code: i32, started_at: Option<Timestamp>, finished_at: Timestamp) -> Self {
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        Self {
            exit_code,
            signal: None,
            reason: reason.to_owned(),
            message: None,
            started_at,
            finished_at,
        }
    }
}

/// The state of one container, as in `ContainerState`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not running: being prepared, waiting for init containers, or in restart backoff.
    Waiting {
        /// `ContainerCreating`, `PodInitializing`, `CrashLoopBackOff`, ...
        reason: String,
        /// Details, never secret values.
        message: Option<String>,
    },
    /// The process runs.
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// The process ended.
    Terminated(Exit),
}

impl RunState {
    /// A waiting state with a reason and no message.
    pub fn waiting(reason: &str) -> Self {
        Self::Waiting {
            reason: reason.to_owned(),
            message: None,
        }
    }
}

/// One container (init or main) of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRun {
    /// The container's name.
    pub name: String,
    /// Its image, reported as given.
    pub image: String,
    /// The current state.
    pub state: RunState,
    /// How the previous run ended, after a restart.
    pub last: Option<Exit>,
    /// How often it was restarted.
    pub restart_count: i32,
    /// The process id of the current or last run.
    pub pid: Option<u32>,
}

impl ContainerRun {
    /// A container that has not started yet.
    pub fn new(name: &str, image: &str, reason: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            state: RunState::waiting(reason),
            last: None,
            restart_count: 0,
            pid: None,
        }
    }

    fn exit(&self) -> Option<&Exit> {
        match &self.state {
            RunState::Terminated(exit) => Some(exit),
            _ => None,
        }
    }

    fn succeeded(&self) -> bool {
        self.exit().is_some_and(|e| e.exit_code == 0)
    }

    fn running(&self) -> bool {
        matches!(self.state, RunState::Running { .. })
    }

    /// Records a new start: the previous exit moves to `last`.
    pub fn start(&mut self, pid: Option<u32>, now: Timestamp) {
        if let RunState::Terminated(exit) = &self.state {
            self.last = Some(exit.clone());
            self.restart_count += 1;
        }
        self.pid = pid;
        self.state = RunState::Running { started_at: now };
    }

    /// Waits before a restart: the exit moves to `last` and counts as a restart.
    pub fn back_off(&mut self, reason: &str, message: Option<String>) {
        if let RunState::Terminated(exit) = &self.state {
            self.last = Some(exit.clone());
            self.restart_count += 1;
        }
        self.state = RunState::Waiting {
            reason: reason.to_owned(),
            message,
        };
    }

    /// The `startedAt` of the current run, if it runs.
    pub fn started_at(&self) -> Option<Timestamp> {
        match self.state {
            RunState::Running { started_at } => Some(started_at),
            _ => None,
        }
    }

    fn to_status(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: format!("pod-runner://{}", self.image),
            container_id: self.pid.map(|pid| format!("pod-runner://{pid}")),
            ready: self.running(),
            started: Some(self.running()),
            restart_count: self.restart_count,
            state: Some(state_of(&self.state)),
            last_state: self.last.as_ref().map(terminated_state),
            ..ContainerStatus::default()
        }
    }
}

/// A phase forced by the runner, overriding what the containers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forced {
    /// The phase.
    pub phase: Phase,
    /// `PodStatus.reason`.
    pub reason: Option<String>,
    /// `PodStatus.message`.
    pub message: Option<String>,
}

/// Everything the runner tracks about one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRun {
    /// The pod's restart policy.
    pub restart_policy: RestartPolicy,
    /// Init containers, in order.
    pub init: Vec<ContainerRun>,
    /// Main containers.
    pub main: Vec<ContainerRun>,
    /// When the runner accepted the pod.
    pub start_time: Option<Timestamp>,
    /// Volumes and the pod folder are ready.
    pub sandbox_ready: bool,
    /// Set when the runner decides the phase itself (deletion, runner restart).
    pub forced: Option<Forced>,
    transitions: BTreeMap<&'static str, (bool, Timestamp)>,
}

impl PodRun {
    /// A pod none of whose containers has started.
    pub fn new(
        restart_policy: RestartPolicy,
        init: Vec<ContainerRun>,
        main: Vec<ContainerRun>,
    ) -> Self {
        Self {
            restart_policy,
            init,
            main,
            start_time: None,
            sandbox_ready: false,
            forced: None,
            transitions: BTreeMap::new(),
        }
    }

    /// Whether every init container has succeeded.
    pub fn initialized(&self) -> bool {
        self.init.iter().all(ContainerRun::succeeded)
    }

    /// The phase the containers' states add up to.
    pub fn phase(&self) -> Phase {
        if let Some(forced) = &self.forced {
            return forced.phase;
        }
        let policy = self.restart_policy;
        let init_failed = self.init.iter().filter_map(ContainerRun::exit);
        if init_failed
            .into_iter()
            .any(|e| !policy.restarts(e.exit_code) && e.exit_code != 0)
        {
            return Phase::Failed;
        }
        if !self.initialized() {
            return Phase::Pending;
        }
        let exits: Vec<&Exit> = self.main.iter().filter_map(ContainerRun::exit).collect();
        let all_ended = !self.main.is_empty() && exits.len() == self.main.len();
        let none_restarts = exits.iter().all(|e| !policy.restarts(e.exit_code));
        if all_ended && none_restarts {
            return if exits.iter().all(|e| e.exit_code == 0) {
                Phase::Succeeded
            } else {
                Phase::Failed
            };
        }
        let started = self.main.iter().any(|c| c.running() || c.restart_count > 0);
        if started || !exits.is_empty() {
            Phase::Running
        } else {
            Phase::Pending
        }
    }

    /// Builds the status to write, moving a condition's `lastTransitionTime` only when its
    /// status flips.
    pub fn status(&mut self, now: Timestamp) -> PodStatus {
        let phase = self.phase();
        let ready = phase == Phase::Running && self.main.iter().all(ContainerRun::running);
        let terminal = phase.is_terminal();
        let flags = [
            ("PodScheduled", true, None),
            (
                "PodReadyToStartContainers",
                self.sandbox_ready && !terminal,
                None,
            ),
            (
                "Initialized",
                self.initialized(),
                Some("ContainersNotInitialized"),
            ),
            ("ContainersReady", ready, Some(not_ready_reason(terminal))),
            ("Ready", ready, Some(not_ready_reason(terminal))),
        ];
        let conditions = flags
            .into_iter()
            .map(|(kind, status, reason)| self.condition(kind, status, reason, now))
            .collect();
        PodStatus {
            phase: Some(phase.as_str().to_owned()),
            conditions: Some(conditions),
            init_container_statuses: Some(self.init.iter().map(ContainerRun::to_status).collect()),
            container_statuses: Some(self.main.iter().map(ContainerRun::to_status).collect()),
            start_time: self.start_time.map(Time),
            host_ip: Some(POD_IP.to_owned()),
            host_ips: Some(vec![HostIP {
                ip: POD_IP.to_owned(),
            }]),
            pod_ip: Some(POD_IP.to_owned()),
            pod_ips: Some(vec![PodIP {
                ip: POD_IP.to_owned(),
            }]),
            reason: self.forced.as_ref().and_then(|f| f.reason.clone()),
            message: self.forced.as_ref().and_then(|f| f.message.clone()),
            ..PodStatus::default()
        }
    }

    fn condition(
        &mut self,
        kind: &'static str,
        status: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> PodCondition {
        let entry = self.transitions.entry(kind).or_insert((status, now));
        if entry.0 != status {
            *entry = (status, now);
        }
        PodCondition {
            type_: kind.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            reason: if status {
                None
            } else {
                reason.map(str::to_owned)
            },
            last_transition_time: Some(Time(entry.1)),
            ..PodCondition::default()
        }
    }
}

fn not_ready_reason(terminal: bool) -> &'static str {
    if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    }
}

fn state_of(state: &RunState) -> ContainerState {
    match state {
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        RunState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..ContainerState::default()
        },
        RunState::Terminated(exit) => terminated_state(exit),
    }
}

fn terminated_state(exit: &Exit) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: exit.exit_code,
            signal: exit.signal,
            reason: Some(exit.reason.clone()),
            message: exit.message.clone(),
            started_at: exit.started_at.map(Time),
            finished_at: Some(Time(exit.finished_at)),
            container_id: None,
        }),
        ..ContainerState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn pod(policy: RestartPolicy, init: usize, main: usize) -> PodRun {
        let c = |p: &str, i: usize| ContainerRun::new(&format!("{p}{i}"), "busybox", "Waiting");
        let mut run = PodRun::new(
            policy,
            (0..init).map(|i| c("init", i)).collect(),
            (0..main).map(|i| c("main", i)).collect(),
        );
        run.start_time = Some(at(0));
        run.sandbox_ready = true;
        run
    }

    fn end(c: &mut ContainerRun, code: i32) {
        c.start(Some(42), at(1));
        c.state = RunState::Terminated(Exit::new(code, Some(at(1)), at(2)));
    }

    fn condition(status: &PodStatus, kind: &str) -> PodCondition {
        let conditions = status.conditions.as_ref().unwrap();
        conditions.iter().find(|c| c.type_ == kind).unwrap().clone()
    }

    #[test]
    fn a_pod_whose_containers_have_not_started_is_pending() {
        let mut run = pod(RestartPolicy::Never, 0, 1);
        let status = run.status(at(0));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(status.start_time, Some(Time(at(0))));
        assert_eq!(condition(&status, "Ready").status, "False");
    }

    #[test]
    fn a_running_container_makes_the_pod_running_and_ready() {
        let mut run = pod(RestartPolicy::Never, 0, 1);
        run.main[0].start(Some(7), at(1));
        let status = run.status(at(1));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(condition(&status, "Ready").status, "True");
        let cs = &status.container_statuses.unwrap()[0];
        assert!(cs.ready);
        assert_eq!(cs.container_id.as_deref(), Some("pod-runner://7"));
        let running = cs.state.as_ref().unwrap().running.as_ref().unwrap();
        assert_eq!(running.started_at, Some(Time(at(1))));
    }

    #[test]
    fn exit_zero_with_never_succeeds_and_ready_turns_false_as_completed() {
        let mut run = pod(RestartPolicy::Never, 0, 1);
        end(&mut run.main[0], 0);
        let status = run.status(at(2));
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("PodCompleted"))
        );
        let term = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (0, Some("Completed"))
        );
    }

    #[test]
    fn exit_three_with_never_fails_and_reports_the_exit_code() {
        let mut run = pod(RestartPolicy::Never, 0, 2);
        end(&mut run.main[0], 0);
        end(&mut run.main[1], 3);
        let status = run.status(at(2));
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let cs = status.container_statuses.unwrap();
        let term = cs[1].state.clone().unwrap().terminated.unwrap();
        assert_eq!((term.exit_code, term.reason.as_deref()), (3, Some("Error")));
        assert_eq!(term.finished_at, Some(Time(at(2))));
    }

    #[test]
    fn one_container_still_running_keeps_a_never_pod_running() {
        let mut run = pod(RestartPolicy::Never, 0, 2);
        end(&mut run.main[0], 3);
        run.main[1].start(None, at(1));
        assert_eq!(run.phase(), Phase::Running);
    }

    #[test]
    fn failed_container_under_on_failure_is_restarting_not_failed() {
        let mut run = pod(RestartPolicy::OnFailure, 0, 1);
        end(&mut run.main[0], 1);
        assert_eq!(run.phase(), Phase::Running);
        run.main[0].start(Some(9), at(3));
        let cs = &run.status(at(3)).container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 1);
        let last = cs.last_state.clone().unwrap().terminated.unwrap();
        assert_eq!(last.exit_code, 1);
    }

    #[test]
    fn back_off_keeps_the_exit_as_last_state_and_counts_one_restart() {
        let mut run = pod(RestartPolicy::OnFailure, 0, 1);
        end(&mut run.main[0], 2);
        run.main[0].back_off("CrashLoopBackOff", None);
        run.main[0].start(Some(5), at(4));
        let cs = &run.status(at(4)).container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 1);
        assert_eq!(
            cs.last_state.clone().unwrap().terminated.unwrap().exit_code,
            2
        );
        assert!(cs.state.as_ref().unwrap().running.is_some());
    }

    #[test]
    fn always_policy_never_reaches_a_terminal_phase() {
        let mut run = pod(RestartPolicy::Always, 0, 1);
        end(&mut run.main[0], 0);
        assert_eq!(run.phase(), Phase::Running);
    }

    #[test]
    fn init_containers_gate_the_main_containers() {
        let mut run = pod(RestartPolicy::Never, 2, 1);
        end(&mut run.init[0], 0);
        run.init[1].start(None, at(1));
        let status = run.status(at(1));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(condition(&status, "Initialized").status, "False");
        assert_eq!(status.init_container_statuses.unwrap().len(), 2);
        end(&mut run.init[1], 0);
        assert!(run.initialized());
        assert_eq!(condition(&run.status(at(2)), "Initialized").status, "True");
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod_but_not_an_on_failure_pod() {
        let mut never = pod(RestartPolicy::Never, 1, 1);
        end(&mut never.init[0], 2);
        assert_eq!(never.phase(), Phase::Failed);
        let mut retry = pod(RestartPolicy::OnFailure, 1, 1);
        end(&mut retry.init[0], 2);
        assert_eq!(retry.phase(), Phase::Pending);
    }

    #[test]
    fn a_forced_phase_wins_and_carries_reason_and_message() {
        let mut run = pod(RestartPolicy::Never, 0, 1);
        run.main[0].start(None, at(1));
        run.forced = Some(Forced {
            phase: Phase::Failed,
            reason: Some("PodRunnerRestarted".into()),
            message: Some("the pod runner restarted while the pod ran".into()),
        });
        let status = run.status(at(5));
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(status.reason.as_deref(), Some("PodRunnerRestarted"));
    }

    #[test]
    fn transition_time_moves_only_when_a_condition_flips() {
        let mut run = pod(RestartPolicy::Never, 0, 1);
        let first = condition(&run.status(at(0)), "Ready").last_transition_time;
        let again = condition(&run.status(at(5)), "Ready").last_transition_time;
        assert_eq!(first, again);
        run.main[0].start(None, at(6));
        let flipped = condition(&run.status(at(6)), "Ready").last_transition_time;
        assert_eq!(flipped, Some(Time(at(6))));
    }

    #[test]
    fn restart_policy_reads_the_spec_and_defaults_to_always() {
        assert_eq!(RestartPolicy::from_spec(None), RestartPolicy::Always);
        assert_eq!(
            RestartPolicy::from_spec(Some("Never")),
            RestartPolicy::Never
        );
        assert!(RestartPolicy::from_spec(Some("OnFailure")).restarts(1));
        assert!(!RestartPolicy::OnFailure.restarts(0));
    }
}
