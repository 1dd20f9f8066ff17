-- The latest recorded outcome of one report delivery. Parameters: id (String).
SELECT toString(status) AS status
FROM report_deliveries
WHERE delivery_id = {id:String}
ORDER BY at DESC
LIMIT 1
