-- The oldest stored event of each CloudTrail account and Okta org before `to`: where "no rotation
-- seen" stops being evidence. Raw events removed by retention move it forward.
-- Parameters: to_ms (Int64, epoch milliseconds); scopes (Array(String): accounts and orgs).
SELECT toString(source) AS source, if(source = 'cloudtrail', account, org) AS scope, toUnixTimestamp64Milli(min(time)) AS since_ms
FROM events
WHERE source IN ('cloudtrail', 'okta')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND if(source = 'cloudtrail', account, org) IN {scopes:Array(String)}
GROUP BY source, scope
ORDER BY source, scope
