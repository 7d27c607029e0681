// @generated automatically by Diesel CLI.

diesel::table! {
    events (id) {
        id -> Int8,
        at -> Timestamptz,
        node_id -> Nullable<Int8>,
        node_name -> Nullable<Text>,
        owner -> Nullable<Text>,
        action -> Text,
        detail -> Jsonb,
        actor -> Nullable<Text>,
    }
}

diesel::table! {
    nodes (id) {
        id -> Int8,
        name -> Text,
        pool -> Text,
        driver -> Text,
        driver_info -> Jsonb,
        properties -> Jsonb,
        ports -> Jsonb,
        allocation_pool -> Array<Text>,
        ironic_fields -> Jsonb,
        state -> Text,
        owner -> Nullable<Text>,
        allocated_at -> Nullable<Timestamptz>,
        lease_expires_at -> Nullable<Timestamptz>,
        maintenance_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        maintenance_by -> Nullable<Text>,
    }
}

diesel::table! {
    requests (id) {
        id -> Int8,
        owner -> Text,
        request -> Jsonb,
        count -> Int4,
        priority -> Int4,
        lease_secs -> Float8,
        state -> Text,
        enqueued_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
        stale_after_secs -> Float8,
        granted_at -> Nullable<Timestamptz>,
        waiter -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(events, nodes, requests,);
