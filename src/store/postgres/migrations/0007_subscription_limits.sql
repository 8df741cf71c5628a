-- A webhook subscription's limits shared by every node on the database
-- (docs/design.md, "Limits across nodes"). max_in_flight needs no state of
-- its own: a lease counts the subscription's unexpired leases. The token
-- bucket of rate_limit_per_s and the circuit breaker live in one row per
-- subscription, written by the lease that spends tokens or takes the probe
-- and by the outcomes that move the breaker. Times in ms of the clock the
-- store judges due times by (the database's by default); tat_us in µs.
CREATE TABLE subscription_limits(
  subscription_id text PRIMARY KEY,
  tat_us bigint NOT NULL DEFAULT 0,         -- GCRA: when the bucket is full again, plus one token
  failures integer NOT NULL DEFAULT 0,      -- consecutive failures while closed
  open_until bigint NOT NULL DEFAULT 0,     -- 0: closed; else the cool-down's end (after it: half-open)
  cooldown_ms bigint NOT NULL DEFAULT 5000, -- the next opening's cool-down
  probe_until bigint NOT NULL DEFAULT 0     -- half-open: the probe's lease end; 0: no probe taken
);

-- The node that holds a push lease (PostgresOptions::node_id): restarted,
-- it returns the leases its killed predecessor held, whose slots would
-- otherwise stay taken until those leases run out.
ALTER TABLE deliveries ADD COLUMN lease_node text;

-- The leases a subscription holds, counted on every lease without walking
-- its future retries.
CREATE INDEX deliveries_in_flight ON deliveries(subscription_id, next_attempt_at)
  WHERE status = 'in_flight';

-- How many deliveries of `sub` a push lease may take now (at most `want`):
-- max_in_flight less its unexpired leases, none while the breaker is open,
-- one (the probe) when half-open and no probe is out, within the tokens left.
-- Takes the subscription's limiter lock (until commit) first, and each
-- statement here reads a snapshot taken after it: two nodes' leases of one
-- subscription are serialised, and the count sees every lease committed
-- before. The lease statement that calls it spends the tokens and marks the
-- probe (pg_deliveries.cc).
CREATE FUNCTION triggers_push_allowance(sub text, want integer, now_ms bigint)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  mif integer;
  rate double precision;
  used integer;
  l subscription_limits%ROWTYPE;
  n integer;
  interval_us bigint;
  now_us bigint := now_ms * 1000;
BEGIN
  -- "trig" in ASCII: the two-key space, apart from the one-key locks.
  PERFORM pg_advisory_xact_lock(1953655143, hashtext(sub));
  SELECT max_in_flight, rate_limit_per_s INTO mif, rate FROM subscriptions WHERE id = sub;
  IF NOT FOUND THEN
    RETURN want;
  END IF;
  SELECT count(*) INTO used FROM deliveries
    WHERE subscription_id = sub AND status = 'in_flight' AND next_attempt_at > now_ms;
  n := least(want, mif - used);
  IF n <= 0 THEN
    RETURN 0;
  END IF;
  SELECT * INTO l FROM subscription_limits WHERE subscription_id = sub;
  IF NOT FOUND THEN  -- never leased: closed, bucket full
    l.tat_us := 0;
    l.open_until := 0;
    l.probe_until := 0;
  END IF;
  IF l.open_until > 0 THEN
    IF l.open_until > now_ms OR l.probe_until > now_ms THEN
      RETURN 0;
    END IF;
    n := 1;
  END IF;
  IF rate > 0 THEN
    interval_us := ceil(1e6 / rate)::bigint;
    -- burst max(1, rate): tokens = (now + (burst - 1) * interval - tat) / interval + 1
    n := least(n, greatest(0, floor((now_us + (greatest(rate, 1) - 1) * interval_us
                                     - greatest(l.tat_us, now_us))::double precision
                                    / interval_us)::integer + 1));
  END IF;
  RETURN n;
END $$;
