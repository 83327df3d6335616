-- 65_expr_details: event detail filters and customer attributes in segment expressions

-- Detail filters of behaviour predicates ("event(link_click, product = 'x')")
-- become details @> '{"product": "x"}', which this index answers for any key;
-- the planner ANDs it with event_kind_time's range (see src/expr_eval.c).
CREATE INDEX event_details ON wam.event USING gin (details jsonb_path_ops);
