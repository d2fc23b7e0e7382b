-- Artifact size of every variant against the fp32 baseline of the same model and format,
-- in the latest run of each matrix/tag (ratio < 1 is smaller).
WITH v AS (SELECT DISTINCT run_id, model, method, format, precision, size_bytes, is_baseline
           FROM latest WHERE status = 'ok'),
base AS (SELECT run_id, model, format, size_bytes AS fp32_bytes FROM v WHERE is_baseline)
SELECT v.model, v.method, v.format, v.precision,
       round(base.fp32_bytes / 1048576.0, 2) AS fp32_mb, round(v.size_bytes / 1048576.0, 2) AS mb,
       round(v.size_bytes / base.fp32_bytes, 3) AS size_ratio
FROM v JOIN base USING (run_id, model, format)
WHERE NOT v.is_baseline
ORDER BY v.model, size_ratio;
