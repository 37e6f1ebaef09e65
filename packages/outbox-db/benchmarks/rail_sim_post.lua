-- wrk's script for rail_sim_capacity.py: POST /payments, each request a payment of its own.
-- `wrk -s rail_sim_post.lua URL -- RUN`: keys are RUN-<thread>-<n>, so no request repeats
-- another (a repeat is an absorbed replay, cheaper than a payment) and no run meets an old key.
-- done() prints one JSON line, the figures rail_sim_capacity.py reads.

local threads = 0
local body = '{"amount": "10.00", "creditor": "acct-1", "currency": "USD"}'

function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end

function init(args)
    prefix = string.format("%s-%d-", args[1], thread_id)
    sent = 0
end

function request()
    sent = sent + 1
    local headers = { ["Idempotency-Key"] = prefix .. sent, ["Content-Type"] = "application/json" }
    return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        '{"requests": %d, "duration_us": %d, "p50_ms": %.3f, "p99_ms": %.3f, '
            .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
        summary.requests, summary.duration,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        errors.connect, errors.read, errors.write, errors.status, errors.timeout
    ))
end
