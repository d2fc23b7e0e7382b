-- Speedup of every method over the fp32 baseline of the same model, format, device and
-- batch size and shape, in the latest run of each matrix/tag (p50 ratio; > 1 is faster).
WITH base AS (
    SELECT run_id, model, format, device, batch_size, shape, latency_p50_ms AS fp32_p50_ms
    FROM latest WHERE status = 'ok' AND is_baseline
)
SELECT l.model, l.method, l.format, l.device, l.batch_size, l.shape, l.precision,
       round(base.fp32_p50_ms, 3) AS fp32_p50_ms, round(l.latency_p50_ms, 3) AS p50_ms,
       round(base.fp32_p50_ms / l.latency_p50_ms, 2) AS speedup
FROM latest l JOIN base USING (run_id, model, format, device, batch_size, shape)
WHERE l.status = 'ok' AND NOT l.is_baseline
ORDER BY l.model, l.device, l.batch_size, l.shape, speedup DESC;
