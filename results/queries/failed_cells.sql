-- Cells that did not produce a measurement in the latest run of each matrix/tag, with the
-- reason: failed, timeout, unavailable (no agent for the device) and skipped (by rule).
SELECT DISTINCT matrix_name, tag, run_id, cell_id, status, error
FROM latest
WHERE status <> 'ok'
ORDER BY status, cell_id;
