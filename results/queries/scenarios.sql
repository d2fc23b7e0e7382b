-- Per variant, the three answers of the throughput scenarios (measure.scenarios), in the
-- latest run of each matrix/tag: single-stream p50, offline inferences/s with the
-- concurrency used, and the highest server rate whose p99 stays under the bound.
SELECT s.model, s.method, s.format, s.device, s.precision, s.batch_size, s.shape,
       round(s.single_stream_p50_ms, 3) AS single_stream_p50_ms,
       round(s.offline_ips, 1) AS offline_ips, s.offline_concurrency AS in_flight,
       round(s.server_max_qps, 1) AS server_max_qps, s.server_p99_bound_ms AS p99_bound_ms,
       round(s.server_p99_at_max_ms, 2) AS p99_at_max_ms, s.emulated, s.scenario_note
FROM scenario_summary s
WHERE s.run_id IN (SELECT DISTINCT run_id FROM latest)
ORDER BY s.model, s.device, s.batch_size, s.shape, s.format, s.method;
