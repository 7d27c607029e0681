// @generated automatically by Diesel CLI.

diesel::table! {
    events (id) {
        id -> Int8,
        at -> Timestamptz,
        node_id -> Int8,
        node_name -> Text,
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
    }
}

diesel::allow_tables_to_appear_in_same_query!(events, nodes,);
