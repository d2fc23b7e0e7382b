-- Where each variant's time goes, in the latest run of each matrix/tag: from its per-layer
-- profile (measure.profile), the op type that takes most of the run, the share of the run
-- in int8 kernels, and the profiled run beside the timed p50; or why it has no profile.
WITH top AS (
    SELECT run_id, cell_id, batch_size, shape, arg_max(op_type, time_ms) AS top_op_type,
           round(max(share), 3) AS top_share
    FROM op_type_profile GROUP BY ALL
), int8 AS (
    SELECT run_id, cell_id, batch_size, shape, round(share, 3) AS int8_share
    FROM precision_profile WHERE precision = 'int8'
)
SELECT l.model, l.method, l.format, l.device, l.batch_size, l.shape, l.precision,
       round(l.latency_p50_ms, 3) AS p50_ms, round(l.profile_total_ms, 3) AS profiled_ms,
       top.top_op_type, top.top_share,
       coalesce(int8.int8_share, CASE WHEN l.profile_total_ms IS NOT NULL THEN 0 END)
           AS int8_share,
       l.profile_note
FROM latest l
LEFT JOIN top USING (run_id, cell_id, batch_size, shape)
LEFT JOIN int8 USING (run_id, cell_id, batch_size, shape)
WHERE l.status = 'ok' AND (l.profile_total_ms IS NOT NULL OR l.profile_note IS NOT NULL)
ORDER BY l.model, l.device, l.batch_size, l.shape, l.format, l.method;
