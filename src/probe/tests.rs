//! Two stream ends driven against each other on a simulated clock: one-way
//! delays, drift, loss in one direction, reordering, duplicates.

use super::*;
use crate::cost::{CostParams, Estimator, LinkState};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const MS: u64 = 1_000_000;

/// One end: its stream, its send schedule and clock offset, what it learnt.
struct End {
    stream: Stream,
    first_send: u64,
    interval: u64,
    /// Added to the true time to get this end's clock.
    clock_offset: u64,
    /// Answers per seq of ours (to see none twice), with their RTT.
    answers: HashMap<u32, Option<Duration>>,
    duplicate_answers: u64,
    /// Fed as the runtime does: each packet sent is a probe, each answer `on_answer`.
    est: Option<(Estimator, Instant)>,
}

impl End {
    fn new(id: u32, first_send: u64, interval: u64, clock_offset: u64) -> End {
        End {
            stream: Stream::new(id, Duration::from_nanos(interval)),
            first_send,
            interval,
            clock_offset,
            answers: HashMap::new(),
            duplicate_answers: 0,
            est: None,
        }
    }

    fn samples(&self) -> impl Iterator<Item = Duration> + '_ {
        self.answers.values().flatten().copied()
    }
}

/// The path in one direction: the delay of the n-th packet sent, and whether
/// it is dropped or delivered twice.
struct Path {
    delay: fn(u32) -> u64,
    drop: fn(u32) -> bool,
    duplicate: fn(u32) -> bool,
}

const CLEAN: fn(u32) -> bool = |_| false;

/// Runs both ends for `duration` ns of true time; packets in flight at the end are not delivered.
fn run(a: &mut End, b: &mut End, ab: &Path, ba: &Path, duration: u64) {
    // (true arrival time, tie-breaker) -> (to b?, packet)
    let mut in_flight: BTreeMap<(u64, u64), (bool, Packet)> = BTreeMap::new();
    let mut next = [a.first_send, b.first_send];
    let mut sent = [0u32; 2];
    let mut tie = 0u64;
    loop {
        let arrival = in_flight.keys().next().copied();
        let send_at = next[0].min(next[1]);
        let t = arrival.map_or(send_at, |(t, _)| t.min(send_at));
        if t >= duration {
            break;
        }
        if arrival.is_some_and(|(at, _)| at == t) {
            let (to_b, p) = in_flight.remove(&arrival.unwrap()).unwrap();
            let end = if to_b { &mut *b } else { &mut *a };
            if let Received::Fresh { answers } = end.stream.receive(&p, t + end.clock_offset) {
                if let Some((est, t0)) = &mut end.est {
                    let now = *t0 + Duration::from_nanos(t);
                    est.on_heard(now);
                    for an in &answers {
                        est.on_answer(STREAM_SEQ_BASE + u64::from(an.seq), an.rtt, now);
                    }
                }
                for an in answers {
                    if end.answers.insert(an.seq, an.rtt).is_some() {
                        end.duplicate_answers += 1;
                    }
                }
            }
            continue;
        }
        let i = if next[0] <= next[1] { 0 } else { 1 };
        let (end, path) = if i == 0 { (&mut *a, ab) } else { (&mut *b, ba) };
        let p = end.stream.send(t + end.clock_offset, false);
        if let Some((est, t0)) = &mut end.est {
            let now = *t0 + Duration::from_nanos(t);
            est.on_tick(now);
            est.on_probe_sent(STREAM_SEQ_BASE + u64::from(p.seq), now);
        }
        let n = sent[i];
        sent[i] += 1;
        next[i] += end.interval;
        if !(path.drop)(n) {
            let copies = if (path.duplicate)(n) { 2 } else { 1 };
            for _ in 0..copies {
                tie += 1;
                in_flight.insert((t + (path.delay)(n), tie), (i == 0, p));
            }
        }
    }
}

/// Our packets never answered: only those still in flight at the end (at most 2 intervals' worth).
fn unanswered(e: &End) -> u64 {
    e.stream.stats().sent - e.answers.len() as u64
}

#[test]
fn rtt_exact_with_asymmetric_delays_and_clock_offsets() {
    let mut a = End::new(1, 0, 100 * MS, 5_000_000_000_000);
    let mut b = End::new(2, 37 * MS, 100 * MS, 17);
    let ab = Path {
        delay: |_| 7 * MS,
        drop: CLEAN,
        duplicate: CLEAN,
    };
    let ba = Path {
        delay: |_| 3 * MS,
        drop: CLEAN,
        duplicate: CLEAN,
    };
    run(&mut a, &mut b, &ab, &ba, 60_000 * MS);
    let rtt = Duration::from_nanos(10 * MS);
    assert!(a.samples().all(|s| s == rtt));
    assert!(b.samples().all(|s| s == rtt));
    // One sample per interval, every packet answered once (but the last in flight).
    assert!(a.samples().count() >= 598, "{}", a.samples().count());
    assert!(b.samples().count() >= 598);
    assert!(unanswered(&a) <= 2 && unanswered(&b) <= 2);
    assert_eq!((a.duplicate_answers, b.duplicate_answers), (0, 0));
    let s = a.stream.stats();
    assert_eq!(
        (s.rx_lost, s.tx_lost, s.duplicates, s.bad_echoes),
        (0, 0, 0, 0)
    );
}

/// B sends 2 % slower, then A does: echoes repeat or skip sequence numbers,
/// yet every packet is answered exactly once, RTTs stay exact, no loss counted,
/// and samples come at the slower end's rate.
#[test]
fn drift_neither_loss_nor_duplicate_samples() {
    for (ia, ib) in [
        (100 * MS, 102 * MS),
        (102 * MS, 100 * MS),
        (100 * MS, 100 * MS + 1),
    ] {
        let mut a = End::new(1, 0, ia, 0);
        let mut b = End::new(2, 50 * MS, ib, 1 << 40);
        let ab = Path {
            delay: |_| 4 * MS,
            drop: CLEAN,
            duplicate: CLEAN,
        };
        let ba = Path {
            delay: |_| 6 * MS,
            drop: CLEAN,
            duplicate: CLEAN,
        };
        run(&mut a, &mut b, &ab, &ba, 120_000 * MS);
        for e in [&a, &b] {
            let s = e.stream.stats();
            assert!(
                unanswered(e) <= 2,
                "{ia} {ib}: {} unanswered",
                unanswered(e)
            );
            assert_eq!(e.duplicate_answers, 0);
            assert!(e.samples().all(|r| r == Duration::from_nanos(10 * MS)));
            assert_eq!((s.rx_lost, s.tx_lost, s.duplicates), (0, 0, 0), "{ia} {ib}");
            // Samples: at least the slower end's packets per interval, minus a few.
            let slower = 120_000 * MS / ia.max(ib);
            let n = e.samples().count() as u64;
            assert!(n + 3 >= slower, "{ia} {ib}: {n} samples, {slower} expected");
        }
    }
}

/// Every 5th packet from A to B is lost: A sees it as its own forward loss
/// (B's report) and as unanswered probes; B sees it as receive loss; the
/// other direction stays clean.
#[test]
fn loss_in_one_direction() {
    let mut a = End::new(1, 0, 100 * MS, 0);
    let mut b = End::new(2, 30 * MS, 100 * MS, 0);
    let ab = Path {
        delay: |_| 5 * MS,
        drop: |n| n % 5 == 4,
        duplicate: CLEAN,
    };
    let ba = Path {
        delay: |_| 5 * MS,
        drop: CLEAN,
        duplicate: CLEAN,
    };
    run(&mut a, &mut b, &ab, &ba, 10_000 * MS);
    let (sa, sb) = (a.stream.stats(), b.stream.stats());
    assert_eq!(sa.sent, 100);
    // A's 100th is lost too, but nothing after it tells B so yet.
    assert_eq!(sb.rx_lost, 19, "B misses every 5th of A's");
    assert_eq!(sa.tx_lost, 19, "A learns it from B's report");
    assert_eq!(sa.tx_delivered, 80);
    assert_eq!((sa.rx_lost, sb.tx_lost), (0, 0));
    assert_eq!(unanswered(&a), 20, "the lost ones");
    assert!(a.samples().count() >= 78);
    // The last of A's (lost) echoed B's 99th; B's 100th is answered by none yet.
    assert_eq!(unanswered(&b), 2);
}

/// Packets overtake each other (every 3rd B->A one 150 ms late) and some are
/// delivered twice: duplicates are recognised, late ones are not loss, and
/// RTT samples are still exact (a late echo of an answered seq is no sample).
#[test]
fn reordering_and_duplicates() {
    let mut a = End::new(1, 0, 100 * MS, 0);
    let mut b = End::new(2, 30 * MS, 100 * MS, 0);
    let ab = Path {
        delay: |_| 5 * MS,
        drop: CLEAN,
        duplicate: |n| n % 7 == 0,
    };
    let ba = Path {
        delay: |n| if n % 3 == 0 { 155 * MS } else { 5 * MS },
        drop: CLEAN,
        duplicate: |n| n % 4 == 0,
    };
    run(&mut a, &mut b, &ab, &ba, 30_000 * MS);
    let (sa, sb) = (a.stream.stats(), b.stream.stats());
    assert_eq!(sa.rx_lost, 0, "late is not lost");
    assert_eq!(
        sa.received, sb.sent,
        "late, not lost (the very first one too)"
    );
    assert_eq!(sb.received, sa.sent);
    assert!(sa.duplicates >= 70, "{}", sa.duplicates);
    assert!(sb.duplicates >= 40, "{}", sb.duplicates);
    assert_eq!((a.duplicate_answers, b.duplicate_answers), (0, 0));
    // A's samples: 10 ms through the fast packets; 160 ms ones only if the slow
    // packet's echo was not answered already by a faster one.
    assert!(a
        .samples()
        .all(|r| r == Duration::from_nanos(10 * MS) || r == Duration::from_nanos(160 * MS)));
    assert!(unanswered(&a) <= 2);
    assert!(b
        .samples()
        .all(|r| r == Duration::from_nanos(10 * MS) || r == Duration::from_nanos(160 * MS)));
}

/// The other end restarts (new sender id, seq from 1): its new stream is taken
/// at once; our echoes to the old one are not mistaken for answers.
#[test]
fn restart_of_the_other_end() {
    let mut a = Stream::new(1, Duration::from_millis(100));
    let mut b = Stream::new(2, Duration::from_millis(100));
    let mut t = 0;
    for _ in 0..50 {
        let p = a.send(t, false);
        b.receive(&p, t + MS);
        let q = b.send(t + 50 * MS, false);
        a.receive(&q, t + 51 * MS);
        t += 100 * MS;
    }
    let mut b2 = Stream::new(3, Duration::from_millis(100));
    let q = b2.send(t, false);
    assert_eq!(q.your_id, 0);
    assert_eq!(a.receive(&q, t + MS), Received::Fresh { answers: vec![] });
    assert_eq!(a.stats().peer_streams, 2);
    let p = a.send(t + 2 * MS, false);
    assert_eq!(p.your_id, 3);
    assert_eq!(p.echo_seq, 1);
    b2.receive(&p, t + 3 * MS);
    let q = b2.send(t + 10 * MS, false);
    let Received::Fresh { answers } = a.receive(&q, t + 11 * MS) else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![Answer {
            seq: p.seq,
            rtt: Some(Duration::from_nanos(2 * MS))
        }]
    );
    // An echo carrying a tx time we did not send with that seq is ignored.
    let mut forged = b2.send(t + 20 * MS, false);
    forged.echo_seq = p.seq - 1;
    forged.echo_tx_time = 12345;
    assert_eq!(
        a.receive(&forged, t + 21 * MS),
        Received::Fresh { answers: vec![] }
    );
    assert_eq!(a.stats().bad_echoes, 1);
}

/// The estimator fed from the stream as the runtime feeds it, the other end
/// sending 30 % slower (every 4th of our packets is not echoed) and 0.1 s probes with a 0.1 s probe timeout (answers
/// come up to one interval late: held at the other end): the link comes up,
/// its RTT is the exact 10 ms, and no loss is counted although echoes skip.
#[test]
fn estimator_fed_by_the_stream_sees_no_loss_under_drift() {
    let params = CostParams {
        interval: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(100),
        down_after: 3,
        ..CostParams::default()
    };
    let t0 = Instant::now();
    let mut a = End::new(1, 0, 100 * MS, 0);
    a.est = Some((Estimator::new(params, t0), t0));
    let mut b = End::new(2, 50 * MS, 130 * MS, 0);
    let path = |d: fn(u32) -> u64| Path {
        delay: d,
        drop: CLEAN,
        duplicate: CLEAN,
    };
    run(
        &mut a,
        &mut b,
        &path(|_| 4 * MS),
        &path(|_| 6 * MS),
        60_000 * MS,
    );
    let (est, _) = a.est.as_ref().unwrap();
    assert_eq!(est.state(), LinkState::Up);
    assert_eq!(est.smoothed_rtt(), Some(Duration::from_millis(10)));
    assert_eq!(est.sustained_loss(), 0.0);
    assert!(est.loss() <= 0.07, "{}", est.loss()); // the latest probe or so in flight
    assert!(unanswered(&a) <= 2);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn packet() -> impl Strategy<Value = Packet> {
        (
            any::<u8>(),
            prop_oneof![Just(2u32), any::<u32>()],
            prop_oneof![Just(1u32), any::<u32>()],
            prop_oneof![1..100u32, any::<u32>()],
            any::<u32>(),
            any::<u64>(),
            prop_oneof![0..100u32, any::<u32>()],
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(
                |(
                    flags,
                    sender_id,
                    your_id,
                    seq,
                    rx_count,
                    tx_time,
                    echo_seq,
                    echo_bitmap,
                    echo_tx_time,
                    echo_held,
                )| Packet {
                    flags,
                    sender_id,
                    your_id,
                    seq: seq.max(1),
                    rx_count,
                    tx_time,
                    echo_seq,
                    echo_bitmap,
                    echo_tx_time,
                    echo_held,
                    interval_us: 100_000,
                    rx_lost: 0,
                },
            )
    }

    proptest! {
        /// Whatever the other end (or an attacker on the link) sends, in any
        /// order and at any time: no panic, and no packet of ours is answered twice.
        #[test]
        fn arbitrary_packets_never_panic_nor_answer_twice(
            ops in proptest::collection::vec((any::<bool>(), packet(), any::<u64>()), 1..200)
        ) {
            let mut s = Stream::new(1, Duration::from_millis(100));
            let mut answered = std::collections::HashSet::new();
            for (send, p, t) in ops {
                if send {
                    s.send(t, false);
                } else if let Received::Fresh { answers } = s.receive(&p, t) {
                    for a in answers {
                        prop_assert!(answered.insert(a.seq), "seq {} answered twice", a.seq);
                    }
                }
                let st = s.stats();
                prop_assert!(st.rx_lost <= u64::from(u32::MAX));
            }
        }
    }
}

/// An echo request is answered at once by an end that knows the flag: the
/// requester gets its RTT without waiting for the other end's next packet;
/// answers are never requests (no ping-pong), and the rate limit holds.
#[test]
fn echo_requests_are_answered_at_once_within_the_rate_limit() {
    let mut a = Stream::new(1, Duration::from_secs(1));
    let mut b = Stream::new(2, Duration::from_secs(1));
    // The streams on their interval: each has heard the other.
    let p = a.send(0, false);
    b.receive(&p, 5 * MS);
    let q = b.send(0, false);
    a.receive(&q, 5 * MS);
    // A suspects a change: an echo request at 300 ms, B answers at once.
    let r = a.send_echo_request(300 * MS);
    assert_eq!(r.flags & packet::FLAG_ECHO_NOW, packet::FLAG_ECHO_NOW);
    assert!(matches!(b.receive(&r, 320 * MS), Received::Fresh { .. }));
    assert!(b.answer_now(&r, 320 * MS));
    let ans = b.send(321 * MS, true);
    assert_eq!(ans.flags, packet::FLAG_ANSWER);
    let Received::Fresh { answers } = a.receive(&ans, 341 * MS) else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![Answer {
            seq: r.seq,
            rtt: Some(Duration::from_nanos(40 * MS))
        }]
    );
    // An answer is never answered, whatever its flags; a plain packet neither.
    let mut both = ans;
    both.flags |= packet::FLAG_ECHO_NOW;
    assert!(!a.answer_now(&both, 342 * MS));
    assert!(!b.answer_now(&p, 343 * MS));
    // 100 requests within a second: at most the bucket and its refill.
    let answered = (0..100u64)
        .filter(|i| {
            let t = 400 * MS + i * 10 * MS;
            let r = a.send_echo_request(t);
            b.receive(&r, t + MS);
            b.answer_now(&r, t + MS)
        })
        .count();
    assert!((10..=20).contains(&answered), "{answered}");
}

/// A packet with flags an end does not know (an echo request to a version
/// without it, or flags of a later one) decodes, and is echoed in the next
/// packet as any other: the requester gets its sample then.
#[test]
fn unknown_flags_change_nothing() {
    let mut a = Stream::new(1, Duration::from_secs(1));
    let mut b = Stream::new(2, Duration::from_secs(1));
    let q = b.send(0, false);
    a.receive(&q, 5 * MS);
    let mut r = a.send_echo_request(300 * MS);
    r.flags |= 0xf0;
    let decoded = Packet::decode(&r.encode()).unwrap();
    assert_eq!(decoded, r);
    assert!(matches!(
        b.receive(&decoded, 320 * MS),
        Received::Fresh { .. }
    ));
    // B (as an older version would) answers in its next packet.
    let next = b.send(1000 * MS, false);
    let Received::Fresh { answers } = a.receive(&next, 1020 * MS) else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![Answer {
            seq: r.seq,
            rtt: Some(Duration::from_nanos(40 * MS))
        }]
    );
}
