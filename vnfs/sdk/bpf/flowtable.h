/* The records shared by the tc-BPF flow table (flowtable.c) and its Python driver.
 *
 * struct flow_key and struct flow_action are THE binary rule layout of
 * vnfs/sdk/encoding.py: the rule-push protocol carries them unchanged and the
 * driver hands them to BPF_MAP_UPDATE_BATCH. The other structs are mirrored in
 * vnfs/sdk/bpf/layout.py. tests/unit/vnfs/test_encoding.py compiles this header
 * on the host and compares every size, offset and constant with the Python side.
 *
 * Only <linux/types.h> is included so the same header builds for the BPF target
 * and for the host.
 */
#ifndef VNFS_FLOWTABLE_H
#define VNFS_FLOWTABLE_H

#include <linux/types.h>

/* One direction of one flow. Addresses and ports in network order, vrf in host
 * order. ICMP echo request and reply: sport = echo identifier, dport = 0. */
struct flow_key {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad; /* always 0, or the key never matches */
	__u16 vrf;
};

/* flow_action.flags (encoding.ActionFlag) */
#define ACT_REWRITE_SRC (1U << 0)
#define ACT_REWRITE_DST (1U << 1)
#define ACT_REWRITE_SPORT (1U << 2) /* ICMP echo: the identifier */
#define ACT_REWRITE_DPORT (1U << 3) /* ICMP echo: the identifier as well */
#define ACT_FORWARD (1U << 4)
#define ACT_ENCAP (1U << 5)
#define ACT_DROP (1U << 6)
#define ACT_COUNT (1U << 7)

/* What to do with the packets of one flow key. Host order unless marked net.
 * The last five fields belong to the datapath: it updates packets/bytes (with
 * ACT_COUNT), last_seen_ns and tcp_flags_seen on every hit. */
struct flow_action {
	__u32 flags;
	__u32 idle_timeout_s;
	__u32 transitory_timeout_s;
	__be32 new_src;
	__be32 new_dst;
	__be16 new_sport;
	__be16 new_dport;
	__u32 out_ifindex; /* 0: the FIB picks the egress interface */
	__be32 next_hop;   /* 0: route the (rewritten or outer) destination */
	__be32 encap_src;
	__be32 encap_dst;
	__be16 encap_sport; /* 0: derived from the inner flow's hash */
	__be16 encap_dport;
	__u32 encap_vni;
	__u64 cookie;
	__u64 packets;
	__u64 bytes;
	__u64 last_seen_ns; /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u32 tcp_flags_seen;
	__u32 reserved;
};

/* Where misses go and where re-injected packets come from (array map punt_cfg,
 * one entry). Addresses and ports in network order. */
struct punt_config {
	__u32 enabled;
	__u32 ifindex; /* the punt interface; 0 = none */
	__be32 local_addr;
	__be32 slowpath_addr;
	__be16 local_port; /* UDP source port of punted packets */
	__be16 slowpath_port;
	__be16 reinject_port; /* UDP port on local_addr that takes REINJECT datagrams */
	__u16 instance;
	__u8 local_mac[6];
	__u8 slowpath_mac[6];
};

/* Per ingress interface settings (hash map iface_cfg, key: __u32 ifindex). */
struct iface_config {
	__u16 vrf;
	__u16 flags; /* none defined yet */
	__u32 reserved;
};

/* The 8-byte header after the UDP header of punted and re-injected packets
 * (encoding.PUNT_HEADER), followed by the IPv4 packet without Ethernet header.
 * In an INSTALL datagram `ifindex` holds the number of rules that follow. */
struct punt_header {
	__u8 version;
	__u8 kind;
	__be16 instance;
	__be32 ifindex;
};

#define PUNT_VERSION 1
#define PUNT_KIND_MISS 1
#define PUNT_KIND_REINJECT 2
/* slow path -> fast path on the reinject port, from the slow path's punt
 * address: 1..INSTALL_MAX_RULES records (struct flow_key, then struct
 * flow_action) for the datapath to put in its table, so the REINJECT sent
 * right after finds its rule without a round trip through the agent. */
#define PUNT_KIND_INSTALL 3
#define INSTALL_MAX_RULES 8

/* The encapsulation header after the outer UDP header: VXLAN-GPE
 * (draft-ietf-nvo3-vxlan-gpe), flags I and P set, next protocol IPv4, so the
 * inner packet is the IPv4 packet without Ethernet header. A Linux
 * `vxlan ... gpe` device decapsulates it. */
struct encap_header {
	__u8 flags;
	__u8 reserved[2];
	__u8 next_protocol;
	__be32 vni; /* vni << 8 */
};

#define ENCAP_FLAGS 0x0c
#define ENCAP_NEXT_PROTO_IPV4 1

/* The table scan (program fp_scan, run on demand with BPF_PROG_TEST_RUN): it
 * counts the flows and copies every rule idle past its timeout at now_ns into
 * scan_keys/scan_values (at most max_out of them; the rest count as overflow).
 * Timeout: transitory_timeout_s for a TCP rule that has seen no ACK or has seen
 * FIN or RST (when nonzero), idle_timeout_s otherwise. */
struct scan_state {
	__u64 now_ns;   /* in: CLOCK_MONOTONIC */
	__u32 max_out;  /* in */
	__u32 expired;  /* out: records in scan_keys/scan_values */
	__u64 entries;  /* out: flows in the table */
	__u64 overflow; /* out: expired rules that did not fit */
};

#define SCAN_SLOTS 65536

/* Datapath counters, a per-CPU array of one struct fp_counters. The first
 * thirteen are driver.GlobalCounters in field order; the rest are details the
 * Python driver reports as extra counters. */
enum fp_counter {
	FP_RX_PACKETS,     /* packets entering on a data interface */
	FP_RX_BYTES,
	FP_HITS,           /* rule found (data interfaces and re-injected) */
	FP_MISSES,         /* no rule, or no flow key (fragment, other protocol) */
	FP_PUNTED,
	FP_PUNT_ERRORS,    /* misses that could not be punted (dropped) */
	FP_REINJECTED,
	FP_REINJECT_MISSES,
	FP_DROPPED,        /* every TC_ACT_SHOT, whatever the reason */
	FP_PASSED_TO_HOST, /* TC_ACT_OK on a data interface */
	FP_FORWARD_ERRORS, /* hit, but no usable route (dropped) */
	FP_TX_PACKETS,     /* forwarded by a rule */
	FP_TX_BYTES,
	FP_RULE_DROPS,     /* dropped by an ACT_DROP rule */
	FP_NO_NEIGHBOUR,   /* forwarded through bpf_redirect_neigh: next hop unresolved */
	FP_TTL_EXCEEDED,
	FP_FRAG_NEEDED,    /* too big for the egress MTU: left to the kernel */
	FP_MALFORMED,
	FP_PUNT_TOO_BIG,   /* over the punt interface's MTU once encapsulated */
	FP_PUNT_GSO,       /* a GSO (aggregated) packet missed: not punted */
	FP_REINJECT_ERRORS,
	FP_DATAGRAM_RULES,    /* rules installed from INSTALL datagrams */
	FP_DATAGRAM_ADDED,    /* of those, keys that were not in the table before */
	FP_DATAGRAM_ERRORS,   /* INSTALL datagrams refused, or rules the table refused */
	FP_ICMP_ERRORS,       /* ICMP errors translated and forwarded by their flow's rule */
	FP_COUNTER_MAX,
};

struct fp_counters {
	__u64 value[FP_COUNTER_MAX];
};

#endif /* VNFS_FLOWTABLE_H */
