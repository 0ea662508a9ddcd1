/*
 * The lease protocol of lambda-idempotency (layers/idempotency/lambda_idempotency/lease.py), for spin.
 * The assumptions, and how the numbers map to the code: docs/lease-model.md.
 *
 * Two executions of one key share one record. Each is a main thread (claim or take-over, STEPS steps each behind the
 * fence, the fenced commit) and a renewer thread. Time is a global tick (real time); execution i reads its epoch
 * clock as tick + off[i], the offsets at most SKEW apart (bounded clock skew), and measures how long it has held its
 * lease in ticks (the monotonic clock: a process that was frozen sees its freeze). Time may pass while any thread
 * stands still, so every freeze (SIGSTOP) of any length, of one thread or of both, is among the interleavings; one
 * execution may crash (SIGKILL) at any moment, and its requests in flight still land. Each request is sent, then
 * applied by the store atomically at any later time, or lost (the store is down).
 *
 * Properties (assertions, checked exhaustively):
 *   SAFE  an execution starts a step's function only while it holds the record and no other execution's take-over
 *         could be applied, and at most one execution commits: two executions never both start a step's function,
 *         or both commit, while each believes it holds the lease.
 *   FREE  a claim sent lease + margin + skew after its holder crashed finds the lease passed and takes the key over.
 *
 * Mutants (spin -D...): NO_FENCE removes the fence before each step; UNCONDITIONAL_TAKE_OVER drops the take-over's
 * condition that the lease has passed by the taker's clock. spin finds a violation of SAFE in each.
 */

#define LEASE   3     /* the lease length (lease=) */
#define PERIOD  1     /* renewed every lease/3; the fence renews first when no more than this is left */
#define MARGIN  1     /* added to every stored lease end */
#define SKEW    1     /* the most two epoch clocks differ: SKEW <= MARGIN */
#define HOLD    (LEASE + MARGIN - SKEW)   /* how long after sending it an execution counts on a confirmed lease */
#define STEPS   2
#ifndef HORIZON
#define HORIZON 7     /* ticks of time explored: a lease and a half past a crash; make test-long explores more */
#endif

#define NONE 0
#define IN_PROGRESS 1
#define COMPLETED 2

byte tick = 0;

/* the record */
byte status = NONE;
byte owner = 0;          /* 1 + the holder's index */
byte lease_end = 0;      /* epoch ticks, as stored */
byte commits = 0;

/* each execution */
byte off[2];             /* its epoch clock reads tick + off[i] */
byte sent_at[2];         /* when the request that confirmed its lease was sent */
bool holding[2];         /* claimed and not finished: its renewer runs */
bool lost[2];
bool renewing[2];        /* one renewal at a time (Lease._lock) */
bool crashed[2];
byte crashed_at[2];
bool in_window[2];       /* between the fence and the start of the step's function */
byte fenced_at[2];
bool done[2];

#define running(i) (!crashed[i])
#define clock(i) (tick + off[i])
/* i holds the record, and a take-over by the other execution, were it applied now, would be refused: one it sends
   now reads its clock now; one a crashed execution left in flight read its clock before the crash */
#define could_take_over(j) (crashed[j] -> crashed_at[j] + off[j] >= lease_end : clock(j) >= lease_end)
#define exclusive(i) (status == IN_PROGRESS && owner == (i) + 1 && !could_take_over(1 - (i)))

/* Time passes, except past a renewal period after a fence whose step's function has not started yet: the assumption
   about the window between the fence and the effect (docs/lease-model.md). */
active proctype Time() {
end:
  do
  :: atomic { (tick < HORIZON && !((done[0] || crashed[0]) && (done[1] || crashed[1]))
       && !(in_window[0] && tick >= fenced_at[0] + PERIOD)
       && !(in_window[1] && tick >= fenced_at[1] + PERIOD)) -> tick++ }
  od
}

/* At most one SIGKILL, at any moment. */
active proctype Crash() {
  if
  :: atomic { !done[0] -> crashed[0] = true; crashed_at[0] = tick; in_window[0] = false }
  :: atomic { !done[1] -> crashed[1] = true; crashed_at[1] = tick; in_window[1] = false }
  :: skip
  fi
}

/* One renewal: sent now (its lease end by this execution's clock), applied by the store at any later time and
   answered then (an answer that arrives later still only makes the holder's view older, never bolder), or lost. */
inline renew(i) {
  atomic { running(i) -> renew_sent = tick; renew_end = clock(i) + LEASE + MARGIN }
  atomic {
    if
    :: status == IN_PROGRESS && owner == i + 1 ->   /* conditioned on the owner token (Store.extend_lease) */
         lease_end = renew_end; sent_at[i] = renew_sent
    :: !(status == IN_PROGRESS && owner == i + 1) -> lost[i] = true    /* refused: another owner took over */
    :: tick >= sent_at[i] + HOLD -> lost[i] = true   /* the store is down and the lease has ended */
    :: tick < sent_at[i] + HOLD -> skip              /* the store is down: tried again later */
    fi;
    renew_sent = 0; renew_end = 0 }
}

proctype Renewer(byte i) {
  byte renew_sent; byte renew_end;
end:
  do
  :: atomic { (running(i) && holding[i] && !lost[i] && !renewing[i] && tick >= sent_at[i] + PERIOD) -> renewing[i] = true }
     renew(i);
     renewing[i] = false
  od
}

proctype Execution(byte i) {
  byte claim_sent; byte claim_clock; byte seen_owner; byte step = 0; byte renew_sent; byte renew_end;
  bool take_over = false;

  /* the claim (a conditional PutItem): creates the record, or is refused with the record as it stands (a claim that
     lands later than it was sent carries a shorter lease: no new behaviour) */
claim:
  atomic { (running(i) && tick < HORIZON) -> claim_sent = tick; claim_clock = clock(i);
    if
    :: status == NONE ->
         status = IN_PROGRESS; owner = i + 1; lease_end = claim_clock + LEASE + MARGIN; goto claimed
    :: status == COMPLETED -> done[i] = true; goto finished   /* replays the result */
    :: status == IN_PROGRESS ->
         /* FREE */
         assert(!(crashed[owner - 1] && claim_sent >= crashed_at[owner - 1] + LEASE + MARGIN + SKEW)
                || lease_end <= claim_clock);
         seen_owner = owner;
         take_over = (lease_end <= claim_clock)
    fi }
  if
  :: take_over ->
     /* the take-over (a conditional UpdateItem), applied at any later time: the owner it saw, still in progress,
        and its lease passed by the taker's clock when the claim was sent (request.now_ms) */
     atomic {
       if
#ifndef UNCONDITIONAL_TAKE_OVER
       :: status == IN_PROGRESS && owner == seen_owner && lease_end <= claim_clock ->
#else
       :: status == IN_PROGRESS && owner == seen_owner ->
#endif
          owner = i + 1; lease_end = claim_clock + LEASE + MARGIN; goto claimed
       :: else -> skip
       fi }
  :: else -> skip
  fi;
  atomic { claim_sent = 0; claim_clock = 0; seen_owner = 0; take_over = false }
  goto claim   /* InProgressError: the caller sends it again later */

claimed:
  atomic { running(i) -> sent_at[i] = claim_sent; holding[i] = true; claim_sent = 0; claim_clock = 0; seen_owner = 0;
           take_over = false }
  do
  :: step == STEPS -> break
  :: step < STEPS ->
fence:
     /* a lost lease raises at once; a lease with no more than a renewal period left is renewed first */
     atomic { running(i) ->
       if
       :: lost[i] -> holding[i] = false; done[i] = true; goto finished   /* LeaseLostError */
#ifndef NO_FENCE
       :: !lost[i] && tick >= sent_at[i] + HOLD -> lost[i] = true; holding[i] = false; done[i] = true; goto finished
       :: !lost[i] && tick + PERIOD < sent_at[i] + HOLD -> in_window[i] = true; fenced_at[i] = tick
       :: (!lost[i] && !renewing[i] && tick + PERIOD >= sent_at[i] + HOLD && tick < sent_at[i] + HOLD) ->
            renewing[i] = true
#else
       :: !lost[i] -> in_window[i] = true; fenced_at[i] = tick
#endif
       fi }
     if
     :: renewing[i] && !in_window[i] -> renew(i); renewing[i] = false; goto fence
     :: else -> skip
     fi;
     /* the step's function starts (its effect), then its result is saved, conditioned on the owner token (a function
        that takes longer only lets the save be refused: LeaseLostError) */
     atomic { running(i) -> assert(exclusive(i)); in_window[i] = false; fenced_at[i] = 0;
       if
       :: status == IN_PROGRESS && owner == i + 1 -> step++
       :: else -> lost[i] = true; holding[i] = false; done[i] = true; goto finished   /* LeaseLostError */
       fi }
  od;

  /* the fenced commit: renewals stop first (waiting for one in flight); lost: LeaseLostError before anything is sent */
  atomic { (running(i) && !renewing[i]) -> holding[i] = false;
    if
    :: lost[i] -> done[i] = true; goto finished
    :: else -> skip
    fi }
  atomic {   /* applied even if its sender has crashed since */
    if
    :: status == IN_PROGRESS && owner == i + 1 -> status = COMPLETED; commits++; assert(commits == 1)
    :: else -> skip   /* refused: LeaseLostError, none of its writes applied */
    fi;
    done[i] = true }
finished:
  atomic { sent_at[i] = 0; lost[i] = false; step = 0 }   /* forgotten: only the record matters from here on */
}

init {
  atomic {
    if   /* two clocks SKEW apart, or together (the executions are alike, so the mirror case adds nothing) */
    :: off[0] = 0; off[1] = SKEW
    :: off[0] = 0; off[1] = 0
    fi;
    run Execution(0); run Execution(1); run Renewer(0); run Renewer(1)
  }
}
