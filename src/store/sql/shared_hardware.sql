-- The first piece of hardware two nodes claim (or one node twice): a port MAC, an IPMI address and port,
-- a Redfish system, or an allocation-pool IP. Two such nodes could be handed to two jobs at once.
WITH claims AS (
    SELECT id, name, 'MAC ' || lower(port->>'address') AS what
    FROM nodes, jsonb_array_elements(ports) AS port
    WHERE port ? 'address'
    UNION ALL
    SELECT id, name, 'IPMI address ' || (driver_info->>'ipmi_address')
                     || coalesce(' port ' || (driver_info->>'ipmi_port'), '')
    FROM nodes
    WHERE driver = 'ipmi' AND driver_info ? 'ipmi_address'
    UNION ALL
    SELECT id, name, 'Redfish system ' || (driver_info->>'redfish_address')
                     || (driver_info->>'redfish_system_id')
    FROM nodes
    WHERE driver = 'redfish'
    UNION ALL
    SELECT id, name, 'allocation-pool IP ' || ip
    FROM nodes, unnest(allocation_pool) AS ip
)
SELECT what || ' belongs to ' || string_agg(name, ' and ' ORDER BY id) AS conflict
FROM claims
GROUP BY what
HAVING count(*) > 1
ORDER BY min(id)
LIMIT 1
