//! The redirects of a Redis Cluster whose slots move that the `redis` crate's cluster client
//! (1.8) hands back as errors instead of following; followed here, for every command and
//! transaction of the shared connection (`connection.rs`).
//!
//! - **`ASK`**: the client follows it by sending `ASKING` to the importing node, waiting for its
//!   reply, then sending the command: two writes on that node's shared, multiplexed connection.
//!   A command of another request written between them takes the one-shot `ASKING` flag, and
//!   this one reaches the importing node without it: `MOVED` back to the migrating node, which
//!   answers `ASK` again. With several requests in the moving slot at once (each round of
//!   redirects lines them up again behind the client's slot refresh) that repeats until the
//!   client's retries run out and the `ASK` comes back as an error. Here `ASKING` and the
//!   command go as one pipeline, one write, so nothing comes between them.
//! - **Transactions** (`MULTI` … `EXEC`): a command refused while queued (`ASK`, `MOVED`,
//!   `TRYAGAIN`) aborts the transaction, and the client never retries an aborted transaction.
//!   It is sent again: after `ASK` with `ASKING` just before `MULTI` on the importing node,
//!   after `MOVED` to the node named, after `TRYAGAIN` after a pause.
//! - **`TRYAGAIN`** (a multi-key command whose keys are half moved, or not all on the importing
//!   node yet: Redis runs it only when the slot's move ends): the client retries it a few times
//!   over about a second, fewer when redirects used its retries up. It goes again after a pause,
//!   to the importing node (with `ASKING`) once an `ASK` named one, until the deadline.
//!
//! Only these replies are followed: each says that nothing ran. A timeout or an I/O error is
//! handed back as it came. The follow-ups stay within the request's deadline (the client's
//! response timeout, counted from the first attempt).

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisResult, ServerErrorKind, Value};
use tokio::time::Instant;

/// Follow-ups after the client gave up, at most (each with the client's own retries); the
/// deadline usually ends them first.
const FOLLOW_UPS: u32 = 8;

/// Before a request refused with `TRYAGAIN` goes again (times the attempt, up to four).
const TRY_AGAIN_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Redirect {
    /// To this node, just after `ASKING` (the slot is being imported there).
    Ask(Node),
    /// To this node (the slot is there now).
    Moved(Node),
    /// To the same slot a little later (some of the keys have moved, some not yet).
    TryAgain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    host: String,
    port: u16,
}

impl Node {
    /// `host:port` as a redirect names it (the host may be an IPv6 address).
    fn parse(addr: &str) -> Option<Self> {
        let (host, port) = addr.rsplit_once(':')?;
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_owned(),
            port: port.parse().ok()?,
        })
    }

    fn route(&self) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

impl Redirect {
    /// The redirect a single reply (or error) carries.
    fn of(err: &RedisError) -> Option<Self> {
        match err.kind() {
            ErrorKind::Server(ServerErrorKind::Ask) => {
                Some(Self::Ask(Node::parse(err.redirect_node()?.0)?))
            }
            ErrorKind::Server(ServerErrorKind::Moved) => {
                Some(Self::Moved(Node::parse(err.redirect_node()?.0)?))
            }
            ErrorKind::Server(ServerErrorKind::TryAgain) => Some(Self::TryAgain),
            _ => None,
        }
    }

    /// The redirect of a transaction: its `EXEC`'s own, or that of a command refused while
    /// queued (then the whole transaction was aborted: nothing of it ran).
    fn of_transaction(err: &RedisError) -> Option<Self> {
        if let Some(redirect) = Self::of(err) {
            return Some(redirect);
        }
        if err.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort) {
            return None;
        }
        err.clone()
            .into_server_errors()?
            .iter()
            .find_map(|(_, e)| Self::of(&RedisError::from(e.clone())))
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Ask(_) => "ASK",
            Self::Moved(_) => "MOVED",
            Self::TryAgain => "TRYAGAIN",
        }
    }

    fn node(&self) -> String {
        match self {
            Self::Ask(n) | Self::Moved(n) => format!("{}:{}", n.host, n.port),
            Self::TryAgain => String::new(),
        }
    }
}

fn timed_out() -> RedisError {
    std::io::Error::from(std::io::ErrorKind::TimedOut).into()
}

fn unexpected_reply_count() -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "fewer replies than commands after a redirect",
    ))
}

/// Where a follow-up goes.
enum Step {
    /// To this node, just after `ASKING` (an `ASK` named it, or a `TRYAGAIN` after one did).
    Asking(Node),
    /// To this node (`MOVED`).
    To(Node),
    /// The same request through the client again (`TRYAGAIN` before any `ASK`).
    Again,
}

/// What following one request's redirects keeps: its deadline (the client's response timeout,
/// counted from the first attempt), the follow-ups so far, and the importing node once an
/// `ASK` named one (a `TRYAGAIN` goes back there).
struct Follow {
    deadline: Instant,
    attempt: u32,
    importing: Option<Node>,
    what: &'static str,
}

impl Follow {
    fn new(budget: Duration, what: &'static str) -> Self {
        Self {
            deadline: Instant::now() + budget,
            attempt: 0,
            importing: None,
            what,
        }
    }

    /// The next follow-up after `redirect` (the last reply's, if any): its pause and where it
    /// goes. `None`: nothing to follow, [`FOLLOW_UPS`] reached, or the deadline comes first.
    fn next(&mut self, redirect: Option<Redirect>) -> Option<(Duration, Step)> {
        let redirect = redirect?;
        if self.attempt >= FOLLOW_UPS {
            return None;
        }
        self.attempt += 1;
        let pause = pause(&redirect, self.attempt, self.deadline)?;
        log(&redirect, self.attempt, self.what);
        let step = match redirect {
            Redirect::Ask(node) => {
                self.importing = Some(node.clone());
                Step::Asking(node)
            }
            Redirect::Moved(node) => {
                self.importing = None;
                Step::To(node)
            }
            Redirect::TryAgain => self.importing.clone().map_or(Step::Again, Step::Asking),
        };
        Some((pause, step))
    }

    /// `request` after `pause`, within the deadline.
    async fn run<T>(
        &self,
        pause: Duration,
        request: impl Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        let paused = async {
            tokio::time::sleep(pause).await;
            request.await
        };
        tokio::time::timeout_at(self.deadline, paused)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }
}

/// `cmd` on the cluster, its `ASK`, `MOVED` and `TRYAGAIN` followed even when the client gave up.
pub(super) async fn command(
    conn: &mut ClusterConnection,
    cmd: &Cmd,
    budget: Duration,
) -> RedisResult<Value> {
    let mut follow = Follow::new(budget, "command");
    let mut reply = conn.req_packed_command(cmd).await;
    while let Some((pause, step)) = follow.next(reply.as_ref().err().and_then(Redirect::of)) {
        let request = async {
            match step {
                Step::To(node) => {
                    let route = RoutingInfo::SingleNode(node.route());
                    conn.route_command(cmd.clone(), route).await
                }
                Step::Asking(node) => {
                    let mut pipe = redis::pipe();
                    pipe.cmd("ASKING").add_command(cmd.clone());
                    let mut replies = conn.route_pipeline(pipe, 0, 2, node.route()).await?;
                    // `ASKING`'s `OK`, then the command's reply.
                    if replies.len() != 2 {
                        return Err(unexpected_reply_count());
                    }
                    Ok(replies.swap_remove(1))
                }
                Step::Again => conn.req_packed_command(cmd).await,
            }
        };
        reply = follow.run(pause, request).await;
    }
    reply
}

/// How long to wait before following `redirect`: `None` when the deadline comes first.
fn pause(redirect: &Redirect, attempt: u32, deadline: Instant) -> Option<Duration> {
    let pause = match redirect {
        Redirect::TryAgain => TRY_AGAIN_PAUSE * attempt.min(4),
        Redirect::Ask(_) | Redirect::Moved(_) => Duration::ZERO,
    };
    (Instant::now() + pause < deadline).then_some(pause)
}

/// `pipeline` on the cluster; a transaction's redirects (`ASK`, `MOVED`, `TRYAGAIN`) followed.
/// A plain pipeline is left as the client answered: some of its commands may have run.
pub(super) async fn pipeline(
    conn: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
    budget: Duration,
) -> RedisResult<Vec<Value>> {
    let mut follow = Follow::new(budget, "transaction");
    let mut reply = conn.req_packed_commands(pipeline, offset, count).await;
    if !pipeline.is_transaction() {
        return reply;
    }
    while let Some((pause, step)) =
        follow.next(reply.as_ref().err().and_then(Redirect::of_transaction))
    {
        let request = async {
            match step {
                Step::To(node) => {
                    conn.route_pipeline(pipeline.clone(), offset, count, node.route())
                        .await
                }
                Step::Asking(node) => {
                    // `ASKING` holds for the whole transaction when it comes just before `MULTI`.
                    let mut pipe = redis::pipe();
                    pipe.cmd("ASKING").cmd("MULTI");
                    for cmd in pipeline.cmd_iter() {
                        pipe.add_command(cmd.clone());
                    }
                    pipe.cmd("EXEC");
                    let replies = conn
                        .route_pipeline(pipe, 0, pipeline.len() + 3, node.route())
                        .await?;
                    // The caller counts from `MULTI`; here `ASKING` comes first.
                    if replies.len() < offset + 1 + count {
                        return Err(unexpected_reply_count());
                    }
                    Ok(replies.into_iter().skip(offset + 1).take(count).collect())
                }
                Step::Again => conn.req_packed_commands(pipeline, offset, count).await,
            }
        };
        reply = follow.run(pause, request).await;
    }
    reply
}

fn log(redirect: &Redirect, attempt: u32, what: &'static str) {
    tracing::debug!(
        redirect = redirect.name(),
        node = %redirect.node(),
        attempt,
        what,
        "redis cluster: following a redirect the cluster client handed back"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(reply: &str) -> RedisError {
        redis::parse_redis_value(reply.as_bytes())
            .unwrap()
            .extract_error()
            .unwrap_err()
    }

    #[test]
    fn ask_moved_and_tryagain_are_followed_and_nothing_else() {
        let node = |host: &str, port| Node {
            host: host.to_owned(),
            port,
        };
        let ask = error("-ASK 3999 127.0.0.1:6381\r\n");
        assert_eq!(
            Redirect::of(&ask),
            Some(Redirect::Ask(node("127.0.0.1", 6381)))
        );
        let moved = error("-MOVED 3999 ::1:6380\r\n");
        assert_eq!(
            Redirect::of(&moved),
            Some(Redirect::Moved(node("::1", 6380)))
        );
        let try_again = error("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
        assert_eq!(Redirect::of(&try_again), Some(Redirect::TryAgain));
        assert_eq!(
            Redirect::of_transaction(&try_again),
            Some(Redirect::TryAgain)
        );
        // A node without a known endpoint names no host: not followed here.
        assert_eq!(Redirect::of(&error("-ASK 3999 :6381\r\n")), None);
        // Errors after which the command may have run are never followed.
        for reply in ["-EXECABORT Transaction discarded\r\n", "-ERR boom\r\n"] {
            assert_eq!(Redirect::of_transaction(&error(reply)), None, "{reply}");
        }
        assert_eq!(Redirect::of(&timed_out()), None);
        assert_eq!(Redirect::of_transaction(&timed_out()), None);
    }

    #[test]
    fn a_tryagain_after_an_ask_goes_to_the_importing_node_until_a_moved() {
        let node = |port| Node::parse(&format!("127.0.0.1:{port}")).unwrap();
        let to = |step: Option<(Duration, Step)>| match step.map(|(_, s)| s) {
            Some(Step::Asking(n)) => format!("asking {}", n.port),
            Some(Step::To(n)) => format!("to {}", n.port),
            Some(Step::Again) => "again".to_owned(),
            None => "done".to_owned(),
        };
        let mut follow = Follow::new(Duration::from_secs(60), "test");
        assert_eq!(to(follow.next(Some(Redirect::TryAgain))), "again");
        assert_eq!(
            to(follow.next(Some(Redirect::Ask(node(6381))))),
            "asking 6381"
        );
        assert_eq!(to(follow.next(Some(Redirect::TryAgain))), "asking 6381");
        assert_eq!(
            to(follow.next(Some(Redirect::Moved(node(6382))))),
            "to 6382"
        );
        assert_eq!(to(follow.next(Some(Redirect::TryAgain))), "again");
        assert_eq!(to(follow.next(None)), "done", "a reply that is no redirect");
        for _ in 5..FOLLOW_UPS {
            assert_eq!(
                to(follow.next(Some(Redirect::Moved(node(6382))))),
                "to 6382"
            );
        }
        assert_eq!(
            to(follow.next(Some(Redirect::Moved(node(6382))))),
            "done",
            "at most FOLLOW_UPS follow-ups"
        );
    }

    #[test]
    fn tryagain_waits_longer_each_time_and_nothing_starts_past_the_deadline() {
        let later = Instant::now() + Duration::from_secs(10);
        let ask = Redirect::Ask(Node::parse("127.0.0.1:6381").unwrap());
        assert_eq!(pause(&ask, 1, later), Some(Duration::ZERO));
        assert_eq!(pause(&Redirect::TryAgain, 1, later), Some(TRY_AGAIN_PAUSE));
        assert_eq!(
            pause(&Redirect::TryAgain, 9, later),
            Some(TRY_AGAIN_PAUSE * 4)
        );
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(pause(&Redirect::TryAgain, 1, soon), None);
        assert_eq!(pause(&ask, 1, Instant::now()), None);
    }
}
