-- Best variant per model and device in the latest run of each matrix/tag: the fastest p50
-- (smallest batch size measured) whose accuracy is within 1 point of the fp32 source
-- (top-1 on labelled data, else top-1 agreement with the fp32 source).
WITH r AS (
    SELECT *, 100 * coalesce(reference_top1 - accuracy_top1, 1 - fidelity_top1_agreement)
                  AS accuracy_drop_pts
    FROM latest WHERE status = 'ok'
)
SELECT matrix_name, tag, model, device, method, format, precision, batch_size,
       round(latency_p50_ms, 3) AS p50_ms, round(accuracy_drop_pts, 2) AS accuracy_drop_pts,
       round(size_bytes / 1048576.0, 2) AS size_mb, run_id
FROM r
WHERE accuracy_drop_pts <= 1.0
  AND batch_size = (SELECT min(batch_size) FROM r r2 WHERE r2.run_id = r.run_id)
QUALIFY row_number() OVER (PARTITION BY run_id, model, device ORDER BY latency_p50_ms) = 1
ORDER BY matrix_name, model, device;
