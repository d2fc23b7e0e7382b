-- What each method did, per model and format, in the latest run of each matrix/tag, at
-- batch 1 on each device: accuracy (top-1 on labelled data such as digits, else top-1
-- agreement with the fp32 source), artifact size and its compressed size (where unstructured
-- sparsity shows), parameters, MACs, weight sparsity, p50 latency and the speedup over the
-- fp32 baseline of the same model, format, device and shape (`seq=128`: a model's named
-- axes each have a row).
WITH base AS (
    SELECT run_id, model, format, device, shape, latency_p50_ms AS fp32_p50_ms
    FROM latest WHERE status = 'ok' AND is_baseline AND batch_size = 1
)
SELECT l.model, l.shape, l.method, l.format, l.device, l.precision,
       round(l.accuracy_top1, 4) AS top1, round(l.fidelity_top1_agreement, 4) AS agree_fp32,
       round(l.size_bytes / 1e6, 3) AS size_mb,
       round(l.compressed_size_bytes / 1e6, 3) AS gz_mb,
       l.params, round(l.macs / 1e6, 1) AS mmacs, round(l.sparsity, 3) AS sparsity,
       round(l.latency_p50_ms, 3) AS p50_ms,
       round(base.fp32_p50_ms / l.latency_p50_ms, 2) AS speedup
FROM latest l LEFT JOIN base USING (run_id, model, format, device, shape)
WHERE l.status = 'ok' AND l.batch_size = 1
ORDER BY l.model, l.shape, l.device, l.format, l.method;
