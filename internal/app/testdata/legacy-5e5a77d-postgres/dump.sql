--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: cw_legacy_5e5a77d; Type: SCHEMA; Schema: -; Owner: -
--



--
-- Name: audit_events_append_only(); Type: FUNCTION; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE FUNCTION __SCHEMA__.audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: acme_accounts; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_accounts (
    id text NOT NULL,
    provisioner_id text NOT NULL,
    key_thumbprint text NOT NULL,
    key_jwk bytea NOT NULL,
    contact text NOT NULL,
    status text NOT NULL,
    terms_agreed boolean NOT NULL,
    eab_key_id text,
    principal_id text,
    created_at timestamp with time zone NOT NULL,
    created_ip text NOT NULL
);


--
-- Name: acme_authorizations; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_authorizations (
    id text NOT NULL,
    account_id text NOT NULL,
    provisioner_id text NOT NULL,
    ident_type text NOT NULL,
    ident_value text NOT NULL,
    wildcard boolean NOT NULL,
    status text NOT NULL,
    expires timestamp with time zone NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: acme_challenges; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_challenges (
    id text NOT NULL,
    authz_id text NOT NULL,
    "position" integer NOT NULL,
    type text NOT NULL,
    token text NOT NULL,
    status text NOT NULL,
    validated timestamp with time zone,
    error text
);


--
-- Name: acme_eab_keys; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_eab_keys (
    id text NOT NULL,
    provisioner_id text NOT NULL,
    principal_id text NOT NULL,
    description text NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by text NOT NULL,
    account_id text,
    bound_at timestamp with time zone
);


--
-- Name: acme_nonce_key; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_nonce_key (
    id integer NOT NULL,
    key bytea NOT NULL,
    CONSTRAINT acme_nonce_key_id_check CHECK ((id = 1))
);


--
-- Name: acme_nonces_used; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_nonces_used (
    id text NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: acme_orders; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_orders (
    id text NOT NULL COLLATE pg_catalog."C",
    account_id text NOT NULL,
    provisioner_id text NOT NULL,
    status text NOT NULL,
    identifiers text NOT NULL,
    not_before timestamp with time zone,
    not_after timestamp with time zone,
    expires timestamp with time zone NOT NULL,
    authz_ids text NOT NULL,
    error text,
    cert_serial text,
    replaces text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: acme_provisioners; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.acme_provisioners (
    id text NOT NULL,
    name text NOT NULL,
    ca_id text NOT NULL,
    profile text NOT NULL,
    challenges text NOT NULL,
    allow_names text NOT NULL,
    require_eab boolean NOT NULL,
    terms_of_service text NOT NULL,
    website text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by text NOT NULL
);


--
-- Name: alert_deliveries; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.alert_deliveries (
    alert_id text NOT NULL,
    channel text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    last_error text NOT NULL,
    sent_at timestamp with time zone
);


--
-- Name: alerts; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.alerts (
    id text NOT NULL,
    subject text NOT NULL,
    kind text NOT NULL,
    threshold text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    payload text NOT NULL
);


--
-- Name: api_tokens; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.api_tokens (
    id text NOT NULL,
    principal_id text NOT NULL,
    description text NOT NULL,
    secret_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone
);


--
-- Name: approval_requests; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.approval_requests (
    id text NOT NULL,
    requester_id text NOT NULL,
    requester text NOT NULL,
    ca text NOT NULL,
    profile text NOT NULL,
    names text NOT NULL,
    body bytea NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    decided_by text NOT NULL,
    decided_at timestamp with time zone,
    comment text NOT NULL,
    serial text NOT NULL,
    error text NOT NULL
);


--
-- Name: audit_checkpoints; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.audit_checkpoints (
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    "time" timestamp with time zone NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL
);


--
-- Name: audit_events; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.audit_events (
    seq bigint NOT NULL,
    "time" timestamp with time zone NOT NULL,
    principal text NOT NULL,
    source text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    outcome text NOT NULL,
    request_id text NOT NULL,
    details text NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);


--
-- Name: audit_head; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.audit_head (
    id integer NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT audit_head_id_check CHECK ((id = 1))
);


--
-- Name: audit_keys; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.audit_keys (
    id text NOT NULL,
    key_provider text NOT NULL,
    key_id text NOT NULL,
    key_algorithm text NOT NULL,
    key_blob bytea,
    public_key bytea NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: cas; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.cas (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL,
    kind text NOT NULL,
    parent_id text NOT NULL,
    external boolean NOT NULL,
    status text NOT NULL,
    key_provider text NOT NULL,
    key_id text NOT NULL,
    key_algorithm text NOT NULL,
    key_blob bytea,
    cert_der bytea,
    csr_der bytea,
    chain_der jsonb NOT NULL,
    previous_status text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    deleted_at timestamp with time zone,
    restorable_until timestamp with time zone
);


--
-- Name: certificate_names; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.certificate_names (
    kind text NOT NULL,
    value text NOT NULL,
    serial text NOT NULL COLLATE pg_catalog."C"
);


--
-- Name: certificates; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.certificates (
    serial text NOT NULL COLLATE pg_catalog."C",
    ca_id text NOT NULL,
    profile text NOT NULL,
    requester text NOT NULL,
    subject text NOT NULL,
    sans jsonb NOT NULL,
    not_before timestamp with time zone NOT NULL,
    not_after timestamp with time zone NOT NULL,
    key_algorithm text NOT NULL,
    key_bits integer NOT NULL,
    signature_algorithm text NOT NULL,
    status text NOT NULL,
    fingerprint text NOT NULL,
    tags jsonb NOT NULL,
    lint_warnings jsonb NOT NULL,
    der bytea NOT NULL,
    managed_key_provider text,
    managed_key_id text,
    managed_key_algorithm text,
    managed_key_blob bytea,
    created_at timestamp with time zone NOT NULL,
    spki_sha256 text DEFAULT ''::text NOT NULL,
    renew_now_at timestamp with time zone,
    source text DEFAULT 'issued'::text NOT NULL,
    owner text DEFAULT ''::text NOT NULL,
    issuer text DEFAULT ''::text NOT NULL,
    issuer_serial text DEFAULT ''::text NOT NULL,
    chain_der jsonb DEFAULT '[]'::jsonb NOT NULL,
    auto_renew boolean DEFAULT false NOT NULL,
    replaces text DEFAULT ''::text NOT NULL,
    renewed_by text DEFAULT ''::text NOT NULL,
    renewal_kind text DEFAULT ''::text NOT NULL,
    renew_failures integer DEFAULT 0 NOT NULL,
    renew_retry_at timestamp with time zone,
    renew_error text DEFAULT ''::text NOT NULL,
    supersede_at timestamp with time zone
);


--
-- Name: crl_numbers; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.crl_numbers (
    ca_id text NOT NULL,
    number bigint NOT NULL
);


--
-- Name: jobs; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.jobs (
    name text NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    outcome text NOT NULL,
    detail text NOT NULL,
    cursor timestamp with time zone
);


--
-- Name: ocsp_responders; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.ocsp_responders (
    ca_id text NOT NULL,
    cert_der bytea NOT NULL,
    key_provider text NOT NULL,
    key_id text NOT NULL,
    key_algorithm text NOT NULL,
    key_blob bytea,
    not_after timestamp with time zone NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: principal_identities; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.principal_identities (
    kind text NOT NULL,
    value text NOT NULL,
    principal_id text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: principals; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.principals (
    id text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    description text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by text NOT NULL,
    disabled_at timestamp with time zone
);


--
-- Name: profiles; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.profiles (
    name text NOT NULL,
    doc bytea NOT NULL
);


--
-- Name: renewal_attempts; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.renewal_attempts (
    id bigint NOT NULL,
    serial text NOT NULL,
    new_serial text NOT NULL,
    kind text NOT NULL,
    ok boolean NOT NULL,
    error text NOT NULL,
    at timestamp with time zone NOT NULL,
    days_left double precision NOT NULL
);


--
-- Name: renewal_attempts_id_seq; Type: SEQUENCE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE SEQUENCE __SCHEMA__.renewal_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: renewal_attempts_id_seq; Type: SEQUENCE OWNED BY; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER SEQUENCE __SCHEMA__.renewal_attempts_id_seq OWNED BY __SCHEMA__.renewal_attempts.id;


--
-- Name: revocations; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.revocations (
    serial text NOT NULL COLLATE pg_catalog."C",
    ca_id text NOT NULL,
    revoked_at timestamp with time zone NOT NULL,
    reason integer NOT NULL,
    invalidity_date timestamp with time zone,
    revoked_by text NOT NULL,
    not_after timestamp with time zone NOT NULL,
    ca boolean NOT NULL
);


--
-- Name: role_bindings; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.role_bindings (
    id text NOT NULL,
    principal_id text NOT NULL,
    role text NOT NULL,
    cas text NOT NULL,
    profiles text NOT NULL,
    names text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by text NOT NULL
);


--
-- Name: roles; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.roles (
    name text NOT NULL,
    description text NOT NULL,
    permissions text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: rotation_items; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.rotation_items (
    rotation_id text NOT NULL,
    serial text NOT NULL,
    method text NOT NULL,
    status text NOT NULL,
    new_serial text NOT NULL,
    error text NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: rotations; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.rotations (
    id text NOT NULL,
    selector text NOT NULL,
    to_ca text NOT NULL,
    reason text NOT NULL,
    grace_seconds integer NOT NULL,
    status text NOT NULL,
    created_by text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone
);


--
-- Name: schema_migrations; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: settings; Type: TABLE; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TABLE __SCHEMA__.settings (
    name text NOT NULL,
    value bytea NOT NULL
);


--
-- Name: renewal_attempts id; Type: DEFAULT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.renewal_attempts ALTER COLUMN id SET DEFAULT nextval('__SCHEMA__.renewal_attempts_id_seq'::regclass);


--
-- Data for Name: acme_accounts; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_authorizations; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_challenges; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_eab_keys; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_nonce_key; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_nonces_used; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_orders; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: acme_provisioners; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.acme_provisioners VALUES ('acme_Y22w25Fknsj-', 'default', 'ca_c0f9cdb45bb6cbcf', 'web_server', '["http-01","dns-01","tls-alpn-01"]', '[]', false, '', '', '2026-12-03 15:11:03.09568+00', 'system');


--
-- Data for Name: alert_deliveries; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: alerts; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: api_tokens; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.api_tokens VALUES ('1f5e35086f37e7b7', 'p_fbeb808940babe94', 'created by init', '\x946381e84c5bdd00edf6f2489df4b2777ec740a7812e2b139fae96cddc9ede44', '2026-12-03 15:11:03.076165+00', NULL, NULL, '2026-12-03 15:11:08.376717+00');
INSERT INTO __SCHEMA__.api_tokens VALUES ('7d0c04d6c78862ee', 'p_c54c5da5ff4fc654', 'created with the principal', '\xc9e34ecdd4bf649af65f9d59f0eee62cee2de8490da8bcda057f5fa57ebd4f91', '2026-12-03 15:11:08.679109+00', NULL, NULL, '2026-12-03 15:11:08.873939+00');


--
-- Data for Name: approval_requests; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: audit_checkpoints; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.audit_checkpoints VALUES (8, '\x8307bebe5019e20f55a7d5bb0621c5d5efb2ebfdb07ee957fa46e43275462686', '2026-12-03 15:11:03.140913+00', 'a8f4d7acfb3dfd17d14d821740957cfb', '\x3046022100d1dd1c4dcaf1ece92d0579fedff9927f470f5b9bb47f99aec4eea45689e2b0e4022100e5f76dba236997692579d10043282c7feed4331f75144e2c7ef25a8f70c4612a');
INSERT INTO __SCHEMA__.audit_checkpoints VALUES (19, '\xfaa059257fafa30050846438d178d304ba355ef34daf4e30689c4f73548694b4', '2026-12-03 15:11:09.391549+00', 'a8f4d7acfb3dfd17d14d821740957cfb', '\x3045022030ddcaeedbfc89313d691d1676713d6991294f1916a158ee45eddce8ffc4d92702210095dd06c223dadc10f1addcd5ca50cef9e53f82f44bd0bab69d1f22468f420398');


--
-- Data for Name: audit_events; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.audit_events VALUES (1, '2026-12-03 15:11:02.843469+00', 'system', '', 'ca.create', 'ca_e71ca7b12b3bcb6a', 'success', '', '{"ca_key_use":"self-signature","key_algorithm":"ecdsa-p384","kind":"root","name":"root","serial":"01fd636d7b8814fdd3315d96cebb7405bd"}', '\x0000000000000000000000000000000000000000000000000000000000000000', '\x3dfaa2b470928a555f0da01822a427feff16eca1f4be7507a4d588a70088ab76');
INSERT INTO __SCHEMA__.audit_events VALUES (2, '2026-12-03 15:11:02.957753+00', 'system', '', 'ca.create', 'ca_c0f9cdb45bb6cbcf', 'success', '', '{"ca_key_use":"ca_e71ca7b12b3bcb6a","key_algorithm":"ecdsa-p256","kind":"intermediate","name":"issuing","parent":"root","parent_id":"ca_e71ca7b12b3bcb6a","serial":"0152d12763c803442ffcc5d080bb7932a6"}', '\x3dfaa2b470928a555f0da01822a427feff16eca1f4be7507a4d588a70088ab76', '\xd06929c7afc5e2b554eceb2f1c41464681b75a332b60aa7af7a5bdc186779ced');
INSERT INTO __SCHEMA__.audit_events VALUES (3, '2026-12-03 15:11:02.977253+00', 'system', '', 'certificate.issue', '018f992b3d8486cc0013920a6908c659b1', 'success', '', '{"ca":"issuing","ca_id":"ca_c0f9cdb45bb6cbcf","ca_key":"k_a241f6c992f196a4adb532a7b719c631","managed_key":"retained","not_after":"2027-03-03T15:10:02Z","profile":"web_server","sans":["localhost","127.0.0.1","::1"],"subject":"CN=localhost"}', '\xd06929c7afc5e2b554eceb2f1c41464681b75a332b60aa7af7a5bdc186779ced', '\x8bd9d9b65a5e693d74cfa51eb301168ff16aa7a66f22ba57002457abc8b25b06');
INSERT INTO __SCHEMA__.audit_events VALUES (4, '2026-12-03 15:11:03.01932+00', 'system', '', 'principal.create', 'admin', 'success', '', '{"id":"p_fbeb808940babe94","kind":"human"}', '\x8bd9d9b65a5e693d74cfa51eb301168ff16aa7a66f22ba57002457abc8b25b06', '\xa9a84679ec9d083f36bc92d832f238149cd3bbb59cfbcba0cb19533398d32cbc');
INSERT INTO __SCHEMA__.audit_events VALUES (5, '2026-12-03 15:11:03.04245+00', 'system', '', 'binding.create', 'admin', 'success', '', '{"binding":"b_06d2aa1388b1039f","role":"admin","scope":{}}', '\xa9a84679ec9d083f36bc92d832f238149cd3bbb59cfbcba0cb19533398d32cbc', '\x78d09099363a1986ba69cd95d323a5c09cfb7ebcdfd08c48467b5599e03964e8');
INSERT INTO __SCHEMA__.audit_events VALUES (6, '2026-12-03 15:11:03.076165+00', 'system', '', 'token.create', 'admin', 'success', '', '{"token_id":"1f5e35086f37e7b7"}', '\x78d09099363a1986ba69cd95d323a5c09cfb7ebcdfd08c48467b5599e03964e8', '\xf94e7ad6d1845803d44de12a068397196f270f4f788289e76ce1ebb1b8f4959e');
INSERT INTO __SCHEMA__.audit_events VALUES (7, '2026-12-03 15:11:03.09568+00', 'system', '', 'acme.provisioner.create', 'default', 'success', '', '{"allow_names":[],"ca":"issuing","ca_id":"ca_c0f9cdb45bb6cbcf","challenges":["http-01","dns-01","tls-alpn-01"],"id":"acme_Y22w25Fknsj-","profile":"web_server","require_eab":false}', '\xf94e7ad6d1845803d44de12a068397196f270f4f788289e76ce1ebb1b8f4959e', '\xbee292493a0f10ea2a268ba42f1b33ed5bf2bfc310cee9fecf43f84f53046d8b');
INSERT INTO __SCHEMA__.audit_events VALUES (8, '2026-12-03 15:11:03.10749+00', 'system', '', 'audit.key.create', 'a8f4d7acfb3dfd17d14d821740957cfb', 'success', '', '{"algorithm":"ecdsa-p256","key_ref":"k_fa2f54bc4e3c84fe40f92edb1430ce5e","provider":"software"}', '\xbee292493a0f10ea2a268ba42f1b33ed5bf2bfc310cee9fecf43f84f53046d8b', '\x8307bebe5019e20f55a7d5bb0621c5d5efb2ebfdb07ee957fa46e43275462686');
INSERT INTO __SCHEMA__.audit_events VALUES (9, '2026-12-03 15:11:03.782602+00', 'system', '', 'server.start', '/tmp/fxpg/data', 'success', '', '{"config_sha256":"e275d82b4e6cc769c1eecab647f97a3b03557f8832ac37b2cc08f8920f4a7662","db":"postgres://postgres@127.0.0.1:5432/test?sslmode=disable\u0026search_path=cw_legacy_5e5a77d","http":"127.0.0.1:18751","https":"127.0.0.1:18752"}', '\x8307bebe5019e20f55a7d5bb0621c5d5efb2ebfdb07ee957fa46e43275462686', '\xdd3af78b5ea05f52e35e90dfc8c60fbcc28df84ae5be88b81331591d7f109627');
INSERT INTO __SCHEMA__.audit_events VALUES (10, '2026-12-03 15:11:03+00', 'system', '', 'crl.sign', 'ca_e71ca7b12b3bcb6a', 'success', '', '{"ca":"root","ca_key":"k_ff45e2a37f0fae4d3fcb968e49881a11","entries":0,"next_update":"2026-12-10T15:11:03Z","number":1}', '\xdd3af78b5ea05f52e35e90dfc8c60fbcc28df84ae5be88b81331591d7f109627', '\x2dd6aba61d370b7aabef0c3fc93fe43f05f9868d42133d22e8d4c0fac7f41466');
INSERT INTO __SCHEMA__.audit_events VALUES (11, '2026-12-03 15:11:03.987893+00', 'system', '', 'ocsp.responder.issue', 'ca_e71ca7b12b3bcb6a', 'success', '', '{"ca":"root","ca_key":"k_ff45e2a37f0fae4d3fcb968e49881a11","not_after":"2026-12-10T15:10:03Z","serial":"0115e347fce435d52c47b350b656e5417b"}', '\x2dd6aba61d370b7aabef0c3fc93fe43f05f9868d42133d22e8d4c0fac7f41466', '\x1efc00d55c452c511cb80da059f871971725c7311b9230d0d1ab31ce00e3f984');
INSERT INTO __SCHEMA__.audit_events VALUES (12, '2026-12-03 15:11:04+00', 'system', '', 'crl.sign', 'ca_c0f9cdb45bb6cbcf', 'success', '', '{"ca":"issuing","ca_key":"k_a241f6c992f196a4adb532a7b719c631","entries":0,"next_update":"2026-12-10T15:11:04Z","number":1}', '\x1efc00d55c452c511cb80da059f871971725c7311b9230d0d1ab31ce00e3f984', '\xba551c8c7b7dba600c3f8cd6e63a1584be0d6906ba1173e412988278b365724e');
INSERT INTO __SCHEMA__.audit_events VALUES (13, '2026-12-03 15:11:04.237926+00', 'system', '', 'ocsp.responder.issue', 'ca_c0f9cdb45bb6cbcf', 'success', '', '{"ca":"issuing","ca_key":"k_a241f6c992f196a4adb532a7b719c631","not_after":"2026-12-10T15:10:04Z","serial":"0151919920ea62b2b597a58d9fea89decc"}', '\xba551c8c7b7dba600c3f8cd6e63a1584be0d6906ba1173e412988278b365724e', '\x2299f03012d2745a1a832504e61927b09c69af4edc64707f65805d7f1e70bde2');
INSERT INTO __SCHEMA__.audit_events VALUES (14, '2026-12-03 15:11:08.390557+00', 'admin', '127.0.0.1', 'profile.create', 'retained_service', 'success', '3503d3bfeb1eb61b0d0770b8', '{"require_approval":false,"sha256":"65ff4cec3846ec9072b8231c76c74e47dd22b6928b5012267849a2f98eabfe5f"}', '\x2299f03012d2745a1a832504e61927b09c69af4edc64707f65805d7f1e70bde2', '\x10564eb6c96d55e66628fff3a998ba3713b6ecc91f0fb0a8084efbd0f8632617');
INSERT INTO __SCHEMA__.audit_events VALUES (15, '2026-12-03 15:11:08.665414+00', 'admin', '127.0.0.1', 'principal.create', 'deployer', 'success', '21f2104bbb20ff583ca7b5cd', '{"id":"p_c54c5da5ff4fc654","kind":"machine"}', '\x10564eb6c96d55e66628fff3a998ba3713b6ecc91f0fb0a8084efbd0f8632617', '\xf21e2324e5b1279b3d6b874150139530ec7a3535dbdda40f2641bea518f9c909');
INSERT INTO __SCHEMA__.audit_events VALUES (16, '2026-12-03 15:11:08.672456+00', 'admin', '127.0.0.1', 'binding.create', 'deployer', 'success', '21f2104bbb20ff583ca7b5cd', '{"binding":"b_6a0b215fbbda7b2b","role":"issuer","scope":{}}', '\xf21e2324e5b1279b3d6b874150139530ec7a3535dbdda40f2641bea518f9c909', '\xd1409e751daeb44ae6d76b5d6f3ff3078b86e1b95005e9bb161f354595cc47fe');
INSERT INTO __SCHEMA__.audit_events VALUES (17, '2026-12-03 15:11:08.679109+00', 'admin', '127.0.0.1', 'token.create', 'deployer', 'success', '21f2104bbb20ff583ca7b5cd', '{"token_id":"7d0c04d6c78862ee"}', '\xd1409e751daeb44ae6d76b5d6f3ff3078b86e1b95005e9bb161f354595cc47fe', '\x6017eee655ba88f0a09035f24d9f9099ee14b151d5e7ca3032b6760608fef08a');
INSERT INTO __SCHEMA__.audit_events VALUES (18, '2026-12-03 15:11:08.900977+00', 'deployer', '127.0.0.1', 'certificate.issue', '01f33da5ac5e7a9fff919713371b010bc1', 'success', 'a423547cb0d2d44c354ec7d0', '{"ca":"issuing","ca_id":"ca_c0f9cdb45bb6cbcf","ca_key":"k_a241f6c992f196a4adb532a7b719c631","managed_key":"handed_out_and_retained","not_after":"2027-12-03T15:10:08Z","profile":"retained_service","sans":["svc.example.internal"],"subject":"CN=svc.example.internal"}', '\x6017eee655ba88f0a09035f24d9f9099ee14b151d5e7ca3032b6760608fef08a', '\x76a51735c103c320f3aa8b5507d07b37a6448bf65411b0222df574b8048d07f4');
INSERT INTO __SCHEMA__.audit_events VALUES (19, '2026-12-03 15:11:09.118856+00', 'admin', '127.0.0.1', 'ca.create', 'ca_dd12c1202cbe502a', 'success', 'af2703de8c6aeb629f17e090', '{"key_algorithm":"ecdsa-p256","kind":"external","name":"corp-pending"}', '\x76a51735c103c320f3aa8b5507d07b37a6448bf65411b0222df574b8048d07f4', '\xfaa059257fafa30050846438d178d304ba355ef34daf4e30689c4f73548694b4');


--
-- Data for Name: audit_head; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.audit_head VALUES (1, 19, '\xfaa059257fafa30050846438d178d304ba355ef34daf4e30689c4f73548694b4');


--
-- Data for Name: audit_keys; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.audit_keys VALUES ('a8f4d7acfb3dfd17d14d821740957cfb', 'software', 'k_fa2f54bc4e3c84fe40f92edb1430ce5e', 'ecdsa-p256', '\x01b3d576d166f0a45fc7e58b6a740147fb087925ecdadc30c267a24c8835dbeaabf459f940e45d1c4411b82bda2a6709fa3a6e5c2784f682576d56e8f7af0edec143017064e074b3bdcee736e56a9d0d9c55d5613012dd174ccaf4a0ee6ea948c7aac78571b1da540a58576f504cfd9344d49cb1c7afd1147b5651f71b58512cf22cfac58e3ef998f1048cb06e6c81d37a1863e64399d15e7c98f3f19b7ea449ddd6ebafaf90da236b82aa40233604acb055a1a72008f47189d71646f8949d14d0888235480b70fa7bb6b8d358a5e6308d5522e621e8c1d83a2c578af2cdbc7243377c', '\x3059301306072a8648ce3d020106082a8648ce3d030107034200049f44c2b460f383fd19e9a7cad1a2cf7d937a196669db3a283a745d6b513bfc5e41c1768f94bab3452b0996faf0df045845745c041388f0df9748012c3f380a56', '2026-12-03 15:11:03.10749+00');


--
-- Data for Name: cas; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.cas VALUES ('ca_e71ca7b12b3bcb6a', 'root', 'root', '', false, 'active', 'software', 'k_ff45e2a37f0fae4d3fcb968e49881a11', 'ecdsa-p384', '\x01b8056f745d0b0af3b069166287df0999d3786c65840bf560234747f28343cf9b6a5e3201fcc8cdc42205710dfe2745f6da65bce4eed26e240c7da5559e4b83810ce62ca851c57ca5b3436ad7c910b22a18fe4be47732c18e53bad0668c8f4a879038bf894ec628676a1ff62d579d6472134c4428a1c7b33ac7a8ec695d0be8908682ecff0b7f950ce53b9d959fe204d433865851166dd30f51e586e66961c55fba8c568886ac9e46ca3868e93eb36a6d1eddf98c32c1a078552f83d45ab11ddfdf816e054e78f55c5b140f5e6edc418247fc46fb152df17bd6010738dcc033befced71a34ce083597819e73b47c304fd3f22f66249dd97285d1cb53ac93763cb96d887f5ab5cd448daafb243786f932dcf', '\x30820241308201c8a003020102021101fd636d7b8814fdd3315d96cebb7405bd300a06082a8648ce3d040303305031223020060355040a131943657274777269676874204c65676163792046697874757265312a30280603550403132143657274777269676874204c6567616379204669787475726520526f6f74204341301e170d3236313230333135313030325a170d3336313133303135313030325a305031223020060355040a131943657274777269676874204c65676163792046697874757265312a30280603550403132143657274777269676874204c6567616379204669787475726520526f6f742043413076301006072a8648ce3d020106052b81040022036200041b5a31578b9ae5439ddca76799a3b1412f4741879e78a7a99d433abe4b6eea5487b68b53d7a5c7ff71b4aeaa83e732a6f195d0a91f4c99a25ff3eeb1352341008cbb337270369b4528b94d3afa26a794856a1792bb7e7bf5e7030162d08a04bea3663064300e0603551d0f0101ff04040302018630120603551d130101ff040830060101ff020101301d0603551d0e04160414276d46e2d2d9a440bcb42f5399f7e3bbcb275d07301f0603551d23041830168014276d46e2d2d9a440bcb42f5399f7e3bbcb275d07300a06082a8648ce3d040303036700306402307b82f888031199f4f5f92c2526e56ea832cf97423b1640f392ce9d3a80d9b19422cc52424ab12cbd63a0df1fa1b550ac023048ff801905146677dd59e52990348c92b5c0648431c165bbccdc75084d3a2f339e63a5512ed2c7f2a8807d182bf139c5', NULL, '[]', '', '2026-12-03 15:11:02.843467+00', '2026-12-03 15:11:02.843467+00', NULL, NULL);
INSERT INTO __SCHEMA__.cas VALUES ('ca_c0f9cdb45bb6cbcf', 'issuing', 'intermediate', 'ca_e71ca7b12b3bcb6a', false, 'active', 'software', 'k_a241f6c992f196a4adb532a7b719c631', 'ecdsa-p256', '\x01a2aafc61f8aebf351a44fba8d68bb95f582e1d1c8009b442a48e51b0f6d0676325975f079817d6ce60bf6b45dea885daf0f7c42256f027b6709e9cde930db6b9a59dea6dbc19fd9da6b5bd66260869de0d858adef49067c95d8d0d4ccd471b3277a32c9ac77af7b3b0ca0d44f527f22488140e0d594aec034fe9ec9bfb802ef3ad8df6a1320d4cb95317baa2f499ec4fdbc53dc542f1c822a3a8ca95baeb6a243eb0a1fef50f6b0c0bbe47e9a3947e7c2a53f3704b351a73b872365af2561c984f014c6ad64bc678bfda5b1a16265dc00c142b5e5dcef40bbf3c4038e713632c9526', '\x308202ff30820286a00302010202110152d12763c803442ffcc5d080bb7932a6300a06082a8648ce3d040303305031223020060355040a131943657274777269676874204c65676163792046697874757265312a30280603550403132143657274777269676874204c6567616379204669787475726520526f6f74204341301e170d3236313230333135313030325a170d3331313230323135313030325a305531223020060355040a131943657274777269676874204c65676163792046697874757265312f302d0603550403132643657274777269676874204c656761637920466978747572652049737375696e6720434120313059301306072a8648ce3d020106082a8648ce3d030107034200047696a3dd24ddd98b8be74ed51a3d196fb2c88b89aeb9026e5b77be4d4eb9a64d5f05eee0054cb5e1416698b46052786bfba1fd0e1e659b0840c185580927d0bba382013a30820136300e0603551d0f0101ff04040302018630120603551d130101ff040830060101ff020100301d0603551d0e0416041499c3e20b2022ecd6cdcd775761da7d882461b374301f0603551d23041830168014276d46e2d2d9a440bcb42f5399f7e3bbcb275d0730818a06082b06010505070101047e307c303b06082b06010505073001862f687474703a2f2f3132372e302e302e313a31383735312f6f6373702f63615f65373163613762313262336263623661303d06082b060105050730028631687474703a2f2f3132372e302e302e313a31383735312f63612f63615f653731636137623132623362636236612e63727430430603551d1f043c303a3038a036a0348632687474703a2f2f3132372e302e302e313a31383735312f63726c2f63615f653731636137623132623362636236612e63726c300a06082a8648ce3d040303036700306402304ebdeb4569ba0184315f82c3f8a61f34fe69677dca1eaf573587b522e735c713d3b8c3e47784cf694e8ac67cebb67622023067a3047ed201ea2aca9ccfd428208e5a32623422ade5a2960ecb8c982a368268225244079c17d67cf54faf1069c333fe', NULL, '[]', '', '2026-12-03 15:11:02.886159+00', '2026-12-03 15:11:02.886159+00', NULL, NULL);
INSERT INTO __SCHEMA__.cas VALUES ('ca_dd12c1202cbe502a', 'corp-pending', 'intermediate', '', true, 'pending', 'software', 'k_62f672aaf048d4d4bfe935b43d15e1e0', 'ecdsa-p256', '\x018712d15f9934af89a8a33ba6bd3e0e5839c4fd12599b4742f3c9be75a287c6bf0b05b20f1499139953e471213d52b40d433fabc47a5ec032376ae6cc1bcff18a67e77ad7b0ac6506d5b0bc1c248fdb438783cc5ca855b06f1c8c96f4d70cb183139f66124e94da10861d327f062d6071ab1ac50b457363d6e8cd01c4d73f3e807e6f472db45b05a28d8fd048aad57475d6c5cd9aa2fa7456f12e454c56db3667ddf90bf9b366e88b1c87630b90614fad8ab5043099939b317d626ce59921b280c69c17c3a32f5ec4db4c88a5d92d4e76399e335660799db6350e60b65af8cbbe28ce', NULL, '\x3081e13081880201003026312430220603550403131b466978747572652050656e64696e672045787465726e616c2043413059301306072a8648ce3d020106082a8648ce3d03010703420004bd4bb12783d99555d56bc4a9fe3fc3fba7a9d30a9f1346c47416837537353ad2e340d577e15c6dc771392bf8564f1dc575c0870835349e31a2ed6c267012b191a000300a06082a8648ce3d04030203480030450221008b0660cd93b4515e38ef14858884f6911019b7d9205e766646f3e2e00e3f6d81022079505771e0f92cecaab1c24524c29aa52fb158b598c5f63fa3a4f51bbb981385', '[]', '', '2026-12-03 15:11:09.118856+00', '2026-12-03 15:11:09.118856+00', NULL, NULL);


--
-- Data for Name: certificate_names; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.certificate_names VALUES ('san', 'localhost', '018f992b3d8486cc0013920a6908c659b1');
INSERT INTO __SCHEMA__.certificate_names VALUES ('san', '127.0.0.1', '018f992b3d8486cc0013920a6908c659b1');
INSERT INTO __SCHEMA__.certificate_names VALUES ('san', '::1', '018f992b3d8486cc0013920a6908c659b1');
INSERT INTO __SCHEMA__.certificate_names VALUES ('tag', 'certwright-server', '018f992b3d8486cc0013920a6908c659b1');
INSERT INTO __SCHEMA__.certificate_names VALUES ('san', 'svc.example.internal', '01f33da5ac5e7a9fff919713371b010bc1');


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.certificates VALUES ('018f992b3d8486cc0013920a6908c659b1', 'ca_c0f9cdb45bb6cbcf', 'web_server', 'system', 'CN=localhost', '["localhost", "127.0.0.1", "::1"]', '2026-12-03 15:10:02+00', '2027-03-03 15:10:02+00', 'ECDSA', 256, 'ECDSA-SHA256', 'valid', '2c83491e648df6963cbdae1282f9456247aef001ad57dcd0588b03b43af87705', '["certwright-server"]', '[]', '\x308202e030820287a0030201020211018f992b3d8486cc0013920a6908c659b1300a06082a8648ce3d040302305531223020060355040a131943657274777269676874204c65676163792046697874757265312f302d0603550403132643657274777269676874204c656761637920466978747572652049737375696e672043412031301e170d3236313230333135313030325a170d3237303330333135313030325a301431123010060355040313096c6f63616c686f73743059301306072a8648ce3d020106082a8648ce3d03010703420004c8deba8e43bf2081b06e9e40661e85f0dd89c49930331876ab0a0173896bbb61d33830a3959c27e767e7318ff229473a325996b428ccbe64e4c537c2f6eb93e6a382017730820173300e0603551d0f0101ff04040302078030130603551d25040c300a06082b06010505070301300c0603551d130101ff04023000301d0603551d0e04160414d34cf38f551acf2f3d2c107d41d456644a699a77301f0603551d2304183016801499c3e20b2022ecd6cdcd775761da7d882461b37430818a06082b06010505070101047e307c303b06082b06010505073001862f687474703a2f2f3132372e302e302e313a31383735312f6f6373702f63615f63306639636462343562623663626366303d06082b060105050730028631687474703a2f2f3132372e302e302e313a31383735312f63612f63615f633066396364623435626236636263662e637274302c0603551d110425302382096c6f63616c686f737487047f00000187100000000000000000000000000000000130430603551d1f043c303a3038a036a0348632687474703a2f2f3132372e302e302e313a31383735312f63726c2f63615f633066396364623435626236636263662e63726c300a06082a8648ce3d040302034700304402204ff91bff9bbb3eccd5a97364542e7790cff5e9d85b40694e1fc7d225674c7bdb02204fd6f7e3a17d90dfc955ba3961dca14d4b5a72c7078f247dd324849eec8cbb8b', 'software', 'k_7065ef508923d912c2599acbcfbcb029', 'ecdsa-p256', '\x013b22f2dbe7ee2529e33aae5cda523f2cb32aa44761bc118444a33785dae7530d34a619d590c8625034c189ff51a5c1b4ea1dafc34ff9620bc47f2cadb09c213def3e70075d3e4aeefb16623475d0a2ba55bafc549ea9c57b23c0f2bc110970162626b7177dc9cd9797c1e6e7f725811022ed7578d3a29a4ff35735f32551543cdc89bdece7ef9377f5bbe7d8312d5094987d0dc6227419f983458a34b461442eb2173e24981ffd2d04b24a9dc5788d70e9a3497842a34700592f3c6f1df8f21c78ac630136c3c38253b8a776fdaf14a4734aae57e329f5f5dd9daa60f82c2201d343', '2026-12-03 15:11:02.977253+00', '38752101699f3350f48cd92debc7e073305ac6735cb645e2251569d5d1430bfa', NULL, 'issued', '', '', '', '[]', false, '', '', '', 0, NULL, '', NULL);
INSERT INTO __SCHEMA__.certificates VALUES ('01f33da5ac5e7a9fff919713371b010bc1', 'ca_c0f9cdb45bb6cbcf', 'retained_service', 'deployer', 'CN=svc.example.internal', '["svc.example.internal"]', '2026-12-03 15:10:08+00', '2027-12-03 15:10:08+00', 'ECDSA', 256, 'ECDSA-SHA256', 'valid', 'e3aa9861d088239b46d0ced62559ae162df8a8134dde08260238d8ce83eee106', '[]', '[]', '\x308202e93082028fa003020102021101f33da5ac5e7a9fff919713371b010bc1300a06082a8648ce3d040302305531223020060355040a131943657274777269676874204c65676163792046697874757265312f302d0603550403132643657274777269676874204c656761637920466978747572652049737375696e672043412031301e170d3236313230333135313030385a170d3237313230333135313030385a301f311d301b060355040313147376632e6578616d706c652e696e7465726e616c3059301306072a8648ce3d020106082a8648ce3d03010703420004a9755f4e37e75301064d23fadf76d571712acba904c355ce682820c7bc1f9532a58b559b641a6d6e8b9d9269275d23d688549156325820fc7dea9f64d8ed866da382017430820170300e0603551d0f0101ff040403020780301d0603551d250416301406082b0601050507030106082b06010505070302300c0603551d130101ff04023000301d0603551d0e04160414e61326eda26b8687cdaccdca909f10fe44e498ca301f0603551d2304183016801499c3e20b2022ecd6cdcd775761da7d882461b37430818a06082b06010505070101047e307c303b06082b06010505073001862f687474703a2f2f3132372e302e302e313a31383735312f6f6373702f63615f63306639636462343562623663626366303d06082b060105050730028631687474703a2f2f3132372e302e302e313a31383735312f63612f63615f633066396364623435626236636263662e637274301f0603551d110418301682147376632e6578616d706c652e696e7465726e616c30430603551d1f043c303a3038a036a0348632687474703a2f2f3132372e302e302e313a31383735312f63726c2f63615f633066396364623435626236636263662e63726c300a06082a8648ce3d040302034800304502210094911e812290526b2f1f63b367a0c10edf161bfb94cc3e3a1df924fa66f65ada02200e528a2291a87c55bbde55602839205e61f48838aa144e6e4dafa848d88cba30', 'software', 'k_9e3fcfd1874f5d045336959cd9a7c412', 'ecdsa-p256', '\x01f1b6ee5e9a692daed3780c30cac711a3cd83419840f9e3e7ad3baad3ac18cc9875ad9b975e6606be7a207301a40c9ed1ef98dfb11a50ee8eb44ab793f4faec640af6ebb934315abe0f147ba5a24f2e666ff22a21e578f37b5c2a5b23354d6c2daf0840f41bb00e76f4fe7c035101a9c5a11ca99cee9258dc91fe2719fe6ff66ea3a0d3ef92d7ec2e093da0193db189107d558b0f248beeefe3d1a35428b0dbe6330afebe7013087dc269a2c13cd2ccd4ab649866ff0aa8dfd0f01df340dcedbe2970be6181e5b984ae944979b6cc87639263134816022270d8039b9fc38a47dea3d4', '2026-12-03 15:11:08.900977+00', '227330fee4016c98c0ccd785afeb82e9b0119f4ecbd447821079cf05600734d3', NULL, 'issued', '', '', '', '[]', false, '', '', '', 0, NULL, '', NULL);


--
-- Data for Name: crl_numbers; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.crl_numbers VALUES ('ca_e71ca7b12b3bcb6a', 1);
INSERT INTO __SCHEMA__.crl_numbers VALUES ('ca_c0f9cdb45bb6cbcf', 1);


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.jobs VALUES ('rotation', '2026-12-03 15:11:03.987752+00', '2026-12-03 15:11:03.992731+00', 'ok', '0 running rotations advanced', NULL);
INSERT INTO __SCHEMA__.jobs VALUES ('expiry-check', '2026-12-03 15:11:04.001989+00', '2026-12-03 15:11:04.088397+00', 'ok', '1 certificates examined, 2 CAs, 0 alerts raised', '2026-12-03 15:11:04.00199+00');
INSERT INTO __SCHEMA__.jobs VALUES ('supersede', '2026-12-03 15:11:04.08897+00', '2026-12-03 15:11:04.124663+00', 'ok', '0 superseded certificates revoked', NULL);
INSERT INTO __SCHEMA__.jobs VALUES ('alert-delivery', '2026-12-03 15:11:04.0958+00', '2026-12-03 15:11:04.133078+00', 'ok', '0 sent, 0 to retry, 0 failed', NULL);
INSERT INTO __SCHEMA__.jobs VALUES ('renewal', '2026-12-03 15:11:04.11431+00', '2026-12-03 15:11:04.156052+00', 'ok', '0 renewed, 0 failed', NULL);


--
-- Data for Name: ocsp_responders; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.ocsp_responders VALUES ('ca_e71ca7b12b3bcb6a', '\x30820256308201dca00302010202110115e347fce435d52c47b350b656e5417b300a06082a8648ce3d040303305031223020060355040a131943657274777269676874204c65676163792046697874757265312a30280603550403132143657274777269676874204c6567616379204669787475726520526f6f74204341301e170d3236313230333135313030335a170d3236313231303135313030335a305f31223020060355040a131943657274777269676874204c65676163792046697874757265313930370603550403133043657274777269676874204c6567616379204669787475726520526f6f74204341204f43535020526573706f6e6465723059301306072a8648ce3d020106082a8648ce3d03010703420004e2d734a1c1cb54fa630dd14b08f2de9c0f6da407df0b43a3a2697fe0859eadb3fa15b9a0107741db52185d32720167af8a2bc1a1e1272172ce82cf7c16124ec5a38187308184300e0603551d0f0101ff04040302078030130603551d25040c300a06082b06010505070309300c0603551d130101ff04023000301d0603551d0e04160414a1b72b5708e23284fcdc3535893fa37dfabbcae3301f0603551d23041830168014276d46e2d2d9a440bcb42f5399f7e3bbcb275d07300f06092b060105050730010504020500300a06082a8648ce3d04030303680030650230464583e2231557626b5c94d2ef750a4fb626511ce44adcd257e727b40fff3a38805ebb36c155f5e0122b370a850d68d3023100ceb54462043a3eb0af5fc25a17b99e5e2a55994e3ac96a35f4913f5ec540b96ebacf22d84e3be030b5265f3d6e203c40', 'software', 'k_58196e32bd767105a1fcd771b717c352', 'ecdsa-p256', '\x0123375eebfd58caf2424aa2f80655c8223f50da049e2af6d40266afa29a46186795f2ee1a0a3003efc3bc44aa4340c414ce80dd8838fddb11f7a24cf704523edb9856b9323119546dcacc4975b41ae86231da782ab45388d076445e03a4a004dcf83beef1e3edadca349e8b5cbd82c1b466375a182eda0010994c89e39712d82241283b1848ddbace526761a9b9c7c2e7207de0452f06273c2d5d04d42d0112b78a258eeb4890c436378415a97cb15afc6e6ca7bf617fede1dca8272c4d17cef868bfba60ab51f963cd354fb7fc4a40db27467791b198174db39b5ed99f45b0fbabc5', '2026-12-10 15:10:03+00', '2026-12-03 15:11:03.987893+00');
INSERT INTO __SCHEMA__.ocsp_responders VALUES ('ca_c0f9cdb45bb6cbcf', '\x30820240308201e6a00302010202110151919920ea62b2b597a58d9fea89decc300a06082a8648ce3d040302305531223020060355040a131943657274777269676874204c65676163792046697874757265312f302d0603550403132643657274777269676874204c656761637920466978747572652049737375696e672043412031301e170d3236313230333135313030345a170d3236313231303135313030345a306431223020060355040a131943657274777269676874204c65676163792046697874757265313e303c0603550403133543657274777269676874204c656761637920466978747572652049737375696e672043412031204f43535020526573706f6e6465723059301306072a8648ce3d020106082a8648ce3d03010703420004206f07f969a75c89cf05d9febe833941a585e4f4a94ea94efc57bc0c433e9f38dcf946a6603585bf323413a8c9c1e9c1b5f3475bc64b6498c491b99a8e8b28aea38187308184300e0603551d0f0101ff04040302078030130603551d25040c300a06082b06010505070309300c0603551d130101ff04023000301d0603551d0e04160414107f4c0fc503edffca6e0a03dc54e129e6f89f23301f0603551d2304183016801499c3e20b2022ecd6cdcd775761da7d882461b374300f06092b060105050730010504020500300a06082a8648ce3d04030203480030450220437d238a62b0c5fc7382b60663a38fbfa917822c7e0aa4bf14151aec8c35a0f4022100d4774c00051e8cb34cd6848c168e24b0d7c4f11b086e87eb559760c08a4333c3', 'software', 'k_05263d6ba18a6ffe6fe0e46e489fa8fc', 'ecdsa-p256', '\x01f4c6ea60b1042a230b6b5a4a26ddd605691013a1681a98ed066f2672516dd0a2a18bc6c4fe9f0dc1419e1bb9cb01f245e33fdc6801b2b156e11e5a65cb4ca03c6b7027cb8ec228964d5f21b1eee8798186e39f8fdceaf36c8088ed33d39cc91299130d614e32e91220838386bef511d21e7d0f9f551dca124666b6456a7071dd2ce4b788e22228da179eaa8a21a5b42faf5d663f90800328a079f5022ba6769722f50bdb3745d41d10e95b14cc1668d8778f02ca0fe9aacdab2630f3a7ad27ee7f9061ff5615c7ba84627ebe7f37595301499d655d6b7d49960f1abb4cebfff038e7', '2026-12-10 15:10:04+00', '2026-12-03 15:11:04.237926+00');


--
-- Data for Name: principal_identities; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: principals; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.principals VALUES ('p_fbeb808940babe94', 'admin', 'human', 'created by init', '2026-12-03 15:11:03.01932+00', 'system', NULL);
INSERT INTO __SCHEMA__.principals VALUES ('p_c54c5da5ff4fc654', 'deployer', 'machine', '', '2026-12-03 15:11:08.665414+00', 'admin', NULL);


--
-- Data for Name: profiles; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.profiles VALUES ('retained_service', '\x7b226e616d65223a2272657461696e65645f73657276696365222c226b657973223a5b7b22616c676f726974686d223a224543445341222c226d696e5f62697473223a3235367d5d2c226d61785f76616c69646974795f64617973223a3336352c2272656e65775f6265666f72655f64617973223a33302c226b65795f7573616765223a5b226469676974616c5f7369676e6174757265225d2c226578745f6b65795f7573616765223a5b227365727665725f61757468222c22636c69656e745f61757468225d2c226e616d6573223a7b22646e73223a7b22616c6c6f77223a747275652c227375666669786573223a5b226578616d706c652e696e7465726e616c225d2c22616c6c6f775f77696c6463617264223a66616c73657d2c226970223a7b22616c6c6f77223a66616c73657d2c22656d61696c223a7b22616c6c6f77223a66616c73657d2c22757269223a7b22616c6c6f77223a66616c73657d2c22726571756972655f73616e223a747275652c226d61785f73616e73223a3130307d2c227375626a6563745f6669656c6473223a5b22636f6d6d6f6e5f6e616d65225d2c22726571756972655f617070726f76616c223a66616c73652c226b65795f6578706f7274223a2272657461696e222c22636162665f6c696e7473223a66616c73652c226275696c74696e223a66616c73657d');


--
-- Data for Name: renewal_attempts; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: revocations; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: role_bindings; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.role_bindings VALUES ('b_06d2aa1388b1039f', 'p_fbeb808940babe94', 'admin', '[]', '[]', '[]', '2026-12-03 15:11:03.04245+00', 'system');
INSERT INTO __SCHEMA__.role_bindings VALUES ('b_6a0b215fbbda7b2b', 'p_c54c5da5ff4fc654', 'issuer', '[]', '[]', '[]', '2026-12-03 15:11:08.672456+00', 'admin');


--
-- Data for Name: roles; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: rotation_items; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: rotations; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--



--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.schema_migrations VALUES (1, '0001_init', '2026-12-03 15:11:01.012295+00');
INSERT INTO __SCHEMA__.schema_migrations VALUES (2, '0002_revocation', '2026-12-03 15:11:01.194652+00');
INSERT INTO __SCHEMA__.schema_migrations VALUES (3, '0003_access_audit', '2026-12-03 15:11:01.515654+00');
INSERT INTO __SCHEMA__.schema_migrations VALUES (4, '0004_acme', '2026-12-03 15:11:01.806474+00');
INSERT INTO __SCHEMA__.schema_migrations VALUES (5, '0005_lifecycle', '2026-12-03 15:11:02.04538+00');


--
-- Data for Name: settings; Type: TABLE DATA; Schema: cw_legacy_5e5a77d; Owner: -
--

INSERT INTO __SCHEMA__.settings VALUES ('server_tls_serial', '\x30313866393932623364383438366363303031333932306136393038633635396231');


--
-- Name: renewal_attempts_id_seq; Type: SEQUENCE SET; Schema: cw_legacy_5e5a77d; Owner: -
--

SELECT pg_catalog.setval('__SCHEMA__.renewal_attempts_id_seq', 1, false);


--
-- Name: acme_accounts acme_accounts_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_accounts
    ADD CONSTRAINT acme_accounts_pkey PRIMARY KEY (id);


--
-- Name: acme_accounts acme_accounts_provisioner_id_key_thumbprint_key; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_accounts
    ADD CONSTRAINT acme_accounts_provisioner_id_key_thumbprint_key UNIQUE (provisioner_id, key_thumbprint);


--
-- Name: acme_authorizations acme_authorizations_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_authorizations
    ADD CONSTRAINT acme_authorizations_pkey PRIMARY KEY (id);


--
-- Name: acme_challenges acme_challenges_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_challenges
    ADD CONSTRAINT acme_challenges_pkey PRIMARY KEY (id);


--
-- Name: acme_eab_keys acme_eab_keys_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_eab_keys
    ADD CONSTRAINT acme_eab_keys_pkey PRIMARY KEY (id);


--
-- Name: acme_nonce_key acme_nonce_key_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_nonce_key
    ADD CONSTRAINT acme_nonce_key_pkey PRIMARY KEY (id);


--
-- Name: acme_nonces_used acme_nonces_used_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_nonces_used
    ADD CONSTRAINT acme_nonces_used_pkey PRIMARY KEY (id);


--
-- Name: acme_orders acme_orders_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_orders
    ADD CONSTRAINT acme_orders_pkey PRIMARY KEY (id);


--
-- Name: acme_provisioners acme_provisioners_name_key; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_provisioners
    ADD CONSTRAINT acme_provisioners_name_key UNIQUE (name);


--
-- Name: acme_provisioners acme_provisioners_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.acme_provisioners
    ADD CONSTRAINT acme_provisioners_pkey PRIMARY KEY (id);


--
-- Name: alert_deliveries alert_deliveries_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.alert_deliveries
    ADD CONSTRAINT alert_deliveries_pkey PRIMARY KEY (alert_id, channel);


--
-- Name: alerts alerts_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);


--
-- Name: alerts alerts_subject_kind_threshold_key; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.alerts
    ADD CONSTRAINT alerts_subject_kind_threshold_key UNIQUE (subject, kind, threshold);


--
-- Name: api_tokens api_tokens_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);


--
-- Name: approval_requests approval_requests_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.approval_requests
    ADD CONSTRAINT approval_requests_pkey PRIMARY KEY (id);


--
-- Name: audit_checkpoints audit_checkpoints_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (seq);


--
-- Name: audit_events audit_events_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (seq);


--
-- Name: audit_head audit_head_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.audit_head
    ADD CONSTRAINT audit_head_pkey PRIMARY KEY (id);


--
-- Name: audit_keys audit_keys_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.audit_keys
    ADD CONSTRAINT audit_keys_pkey PRIMARY KEY (id);


--
-- Name: cas cas_name_key; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.cas
    ADD CONSTRAINT cas_name_key UNIQUE (name);


--
-- Name: cas cas_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.cas
    ADD CONSTRAINT cas_pkey PRIMARY KEY (id);


--
-- Name: certificate_names certificate_names_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.certificate_names
    ADD CONSTRAINT certificate_names_pkey PRIMARY KEY (kind, value, serial);


--
-- Name: certificates certificates_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (serial);


--
-- Name: crl_numbers crl_numbers_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.crl_numbers
    ADD CONSTRAINT crl_numbers_pkey PRIMARY KEY (ca_id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (name);


--
-- Name: ocsp_responders ocsp_responders_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.ocsp_responders
    ADD CONSTRAINT ocsp_responders_pkey PRIMARY KEY (ca_id);


--
-- Name: principal_identities principal_identities_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.principal_identities
    ADD CONSTRAINT principal_identities_pkey PRIMARY KEY (kind, value);


--
-- Name: principals principals_name_key; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.principals
    ADD CONSTRAINT principals_name_key UNIQUE (name);


--
-- Name: principals principals_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.principals
    ADD CONSTRAINT principals_pkey PRIMARY KEY (id);


--
-- Name: profiles profiles_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.profiles
    ADD CONSTRAINT profiles_pkey PRIMARY KEY (name);


--
-- Name: renewal_attempts renewal_attempts_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.renewal_attempts
    ADD CONSTRAINT renewal_attempts_pkey PRIMARY KEY (id);


--
-- Name: revocations revocations_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.revocations
    ADD CONSTRAINT revocations_pkey PRIMARY KEY (serial);


--
-- Name: role_bindings role_bindings_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.role_bindings
    ADD CONSTRAINT role_bindings_pkey PRIMARY KEY (id);


--
-- Name: roles roles_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (name);


--
-- Name: rotation_items rotation_items_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.rotation_items
    ADD CONSTRAINT rotation_items_pkey PRIMARY KEY (rotation_id, serial);


--
-- Name: rotations rotations_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.rotations
    ADD CONSTRAINT rotations_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: settings settings_pkey; Type: CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (name);


--
-- Name: acme_accounts_created_ip; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_accounts_created_ip ON __SCHEMA__.acme_accounts USING btree (provisioner_id, created_ip, created_at);


--
-- Name: acme_authorizations_reuse; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_authorizations_reuse ON __SCHEMA__.acme_authorizations USING btree (account_id, ident_type, ident_value, status, expires);


--
-- Name: acme_authorizations_status; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_authorizations_status ON __SCHEMA__.acme_authorizations USING btree (account_id, status, expires);


--
-- Name: acme_challenges_authz; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_challenges_authz ON __SCHEMA__.acme_challenges USING btree (authz_id, "position");


--
-- Name: acme_challenges_failed; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_challenges_failed ON __SCHEMA__.acme_challenges USING btree (status, validated);


--
-- Name: acme_eab_keys_provisioner; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_eab_keys_provisioner ON __SCHEMA__.acme_eab_keys USING btree (provisioner_id);


--
-- Name: acme_nonces_used_expires; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_nonces_used_expires ON __SCHEMA__.acme_nonces_used USING btree (expires_at);


--
-- Name: acme_orders_account; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_orders_account ON __SCHEMA__.acme_orders USING btree (account_id, created_at, id);


--
-- Name: acme_orders_cert_serial; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_orders_cert_serial ON __SCHEMA__.acme_orders USING btree (cert_serial);


--
-- Name: acme_orders_replaces; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX acme_orders_replaces ON __SCHEMA__.acme_orders USING btree (replaces);


--
-- Name: alert_deliveries_due; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX alert_deliveries_due ON __SCHEMA__.alert_deliveries USING btree (status, next_attempt_at);


--
-- Name: alerts_created; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX alerts_created ON __SCHEMA__.alerts USING btree (created_at);


--
-- Name: api_tokens_principal; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX api_tokens_principal ON __SCHEMA__.api_tokens USING btree (principal_id);


--
-- Name: approval_requests_status; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX approval_requests_status ON __SCHEMA__.approval_requests USING btree (status, expires_at);


--
-- Name: audit_events_time; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX audit_events_time ON __SCHEMA__.audit_events USING btree ("time", seq);


--
-- Name: cas_created_at; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX cas_created_at ON __SCHEMA__.cas USING btree (created_at, id);


--
-- Name: certificates_auto_renew; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_auto_renew ON __SCHEMA__.certificates USING btree (not_after) WHERE (auto_renew AND (renewed_by = ''::text));


--
-- Name: certificates_ca_id; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_ca_id ON __SCHEMA__.certificates USING btree (ca_id, serial);


--
-- Name: certificates_ca_unexpired; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_ca_unexpired ON __SCHEMA__.certificates USING btree (ca_id, not_after, serial, status);


--
-- Name: certificates_created_at; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_created_at ON __SCHEMA__.certificates USING btree (created_at, serial);


--
-- Name: certificates_imported; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_imported ON __SCHEMA__.certificates USING btree (not_after) WHERE (source = 'imported'::text);


--
-- Name: certificates_not_after; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_not_after ON __SCHEMA__.certificates USING btree (not_after);


--
-- Name: certificates_profile; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_profile ON __SCHEMA__.certificates USING btree (profile, serial);


--
-- Name: certificates_renew_now; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_renew_now ON __SCHEMA__.certificates USING btree (renew_now_at) WHERE (renew_now_at IS NOT NULL);


--
-- Name: certificates_replaces; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_replaces ON __SCHEMA__.certificates USING btree (replaces) WHERE (replaces <> ''::text);


--
-- Name: certificates_spki_sha256; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_spki_sha256 ON __SCHEMA__.certificates USING btree (spki_sha256, serial);


--
-- Name: certificates_supersede; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX certificates_supersede ON __SCHEMA__.certificates USING btree (supersede_at) WHERE (supersede_at IS NOT NULL);


--
-- Name: renewal_attempts_at; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX renewal_attempts_at ON __SCHEMA__.renewal_attempts USING btree (at);


--
-- Name: revocations_crl; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX revocations_crl ON __SCHEMA__.revocations USING btree (ca_id, not_after) INCLUDE (serial, revoked_at, reason, invalidity_date, revoked_by, ca);


--
-- Name: revocations_revoked_at; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX revocations_revoked_at ON __SCHEMA__.revocations USING btree (revoked_at, serial);


--
-- Name: role_bindings_principal; Type: INDEX; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE INDEX role_bindings_principal ON __SCHEMA__.role_bindings USING btree (principal_id);


--
-- Name: audit_events audit_events_no_truncate; Type: TRIGGER; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON __SCHEMA__.audit_events FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.audit_events_append_only();


--
-- Name: audit_events audit_events_no_update; Type: TRIGGER; Schema: cw_legacy_5e5a77d; Owner: -
--

CREATE TRIGGER audit_events_no_update BEFORE DELETE OR UPDATE ON __SCHEMA__.audit_events FOR EACH ROW EXECUTE FUNCTION __SCHEMA__.audit_events_append_only();


--
-- Name: alert_deliveries alert_deliveries_alert_id_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.alert_deliveries
    ADD CONSTRAINT alert_deliveries_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES __SCHEMA__.alerts(id);


--
-- Name: api_tokens api_tokens_principal_id_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.api_tokens
    ADD CONSTRAINT api_tokens_principal_id_fkey FOREIGN KEY (principal_id) REFERENCES __SCHEMA__.principals(id);


--
-- Name: certificate_names certificate_names_serial_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.certificate_names
    ADD CONSTRAINT certificate_names_serial_fkey FOREIGN KEY (serial) REFERENCES __SCHEMA__.certificates(serial);


--
-- Name: principal_identities principal_identities_principal_id_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.principal_identities
    ADD CONSTRAINT principal_identities_principal_id_fkey FOREIGN KEY (principal_id) REFERENCES __SCHEMA__.principals(id);


--
-- Name: role_bindings role_bindings_principal_id_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.role_bindings
    ADD CONSTRAINT role_bindings_principal_id_fkey FOREIGN KEY (principal_id) REFERENCES __SCHEMA__.principals(id);


--
-- Name: rotation_items rotation_items_rotation_id_fkey; Type: FK CONSTRAINT; Schema: cw_legacy_5e5a77d; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.rotation_items
    ADD CONSTRAINT rotation_items_rotation_id_fkey FOREIGN KEY (rotation_id) REFERENCES __SCHEMA__.rotations(id);


--
-- PostgreSQL database dump complete
--


