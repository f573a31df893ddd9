/* The fast path: a tc (clsact ingress, direct-action) program that forwards
 * IPv4 packets by per-flow rules and punts the first packet of every unknown
 * flow to the slow path.
 *
 * Attached on the ingress of every data interface and of the punt interface of
 * one network namespace (the fast-path unit's). Routing, next-hop MACs and the
 * egress interface come from that namespace's FIB (bpf_fib_lookup).
 *
 * Data interface, per packet:
 *   not IPv4 (ARP, IPv6...)                      -> the kernel (TC_ACT_OK)
 *   IPv4 with a flow key (TCP, UDP, ICMP echo, not a fragment), rule found
 *                                                -> the rule's actions
 *   anything else (no rule, fragment, other protocol or ICMP type):
 *     destination local to the namespace (or not routable) -> the kernel
 *     otherwise -> punted to the slow path (MISS), never forwarded untranslated
 * Punt interface: UDP to (local punt address, reinject port) is a REINJECT
 * datagram: the outer headers are stripped and the inner packet is looked up
 * as if it had entered on the interface the punt header names; no rule -> drop
 * (a re-injected packet is never punted again). An INSTALL datagram there,
 * from the slow path's address, carries a few rules that go into the table
 * (then it is consumed): the slow path sends a new flow's rules this way just
 * before re-injecting its first packet. Other traffic -> the kernel.
 *
 * Rule actions, in this order: count (and always last_seen_ns/tcp_flags_seen),
 * drop, rewrite (checksums fixed incrementally), encapsulate (VXLAN-GPE, inner
 * TTL decremented), forward (TTL decremented unless encapsulated, MACs and
 * egress from the FIB; an unresolved next hop goes through bpf_redirect_neigh so
 * the kernel resolves it and still sends the packet where the rule says).
 *
 * ICMP errors (destination unreachable, time exceeded, parameter problem) have no
 * key of their own: they are forwarded by the rule of the flow whose packet they
 * quote, translated both in their own header and in the quote (see icmp_error);
 * otherwise they miss like any keyless packet.
 *
 * Not handled: VLAN tags (passed to the kernel), IPv6, quoted packets with IP
 * options, GSO packets that miss (not punted: the next plain segment is).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "flowtable.h"

#define AF_INET 2
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_ERROR_HLEN 8 /* type, code, checksum, 4 bytes (unused, MTU or pointer) */
#define QUOTED_L4_LEN 8   /* what every ICMP error quotes of the packet's L4 header */
#define TCP_HLEN 20
#define TCP_FLAGS_BYTE 13
#define TCP_FIN 0x01
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define NSEC_PER_SEC 1000000000ULL
#define UDP_HLEN 8
#define ICMP_ECHO_HLEN 8
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define OUTER_TTL 64
/* Longest header run parse() may need in the linear area. */
#define MAX_PULL (ETH_HLEN + 60 + TCP_HLEN)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20); /* the driver sets the real size before loading */
	__type(key, struct flow_key);
	__type(value, struct flow_action);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct iface_config);
} iface_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct punt_config);
} punt_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_state);
} scan_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SCAN_SLOTS);
	__type(key, __u32);
	__type(value, struct flow_key);
} scan_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SCAN_SLOTS);
	__type(key, __u32);
	__type(value, struct flow_action);
} scan_values SEC(".maps");

/* The outer headers of punted, re-injected and encapsulated packets. */
struct outer {
	struct iphdr ip;
	struct udphdr udp;
	union {
		struct punt_header punt;
		struct encap_header encap;
	};
};

#define OUTER_LEN ((__s32)sizeof(struct outer))

struct packet {
	struct flow_key key; /* vrf is filled in by lookup() */
	__u32 len;           /* skb->len on arrival: what rules count */
	__u32 ifindex;       /* ingress; for a re-injected packet the punt header's */
	__u32 l4;            /* offset of the L4 header */
	__be32 src;          /* addresses as they are now (rewrite() updates them) */
	__be32 dst;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 tos;
};

enum parse_result {
	PARSE_KEYED,      /* key filled in */
	PARSE_UNKEYED,    /* IPv4, but no flow key: fragment, other protocol, other ICMP */
	PARSE_ICMP_ERROR, /* unkeyed, but an ICMP error: keyed by the packet it quotes */
	PARSE_NOT_IPV4,
	PARSE_MALFORMED,
};

#define COUNT(c, idx) ((c)->value[idx]++)
#define COUNT_N(c, idx, n) ((c)->value[idx] += (n))

static __always_inline int drop(struct fp_counters *c, int reason)
{
	COUNT(c, reason);
	COUNT(c, FP_DROPPED);
	return TC_ACT_SHOT;
}

/* Make the first `need` bytes directly accessible: GRO and AF_PACKET (TX ring)
 * hand over skbs whose headers are partly in fragments. */
static __always_inline int ensure(struct __sk_buff *skb, __u32 need)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (need > MAX_PULL + OUTER_LEN)
		return -1;
	if (data + need <= end)
		return 0;
	if (need > skb->len || bpf_skb_pull_data(skb, need))
		return -1;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	return data + need <= end ? 0 : -1;
}

static __always_inline __u16 csum_fold(__s64 sum)
{
	__u64 s = (__u64)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	void *data, *end;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u8 *l4;
	__u32 hlen;
	__u8 proto;

	if (ensure(skb, ETH_HLEN))
		return PARSE_NOT_IPV4;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;

	if (ensure(skb, ETH_HLEN + sizeof(struct iphdr)))
		return PARSE_MALFORMED;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	hlen = ip->ihl * 4;
	proto = ip->protocol;
	p->src = p->key.src = ip->saddr;
	p->dst = p->key.dst = ip->daddr;
	p->key.proto = proto;
	p->ttl = ip->ttl;
	p->tos = ip->tos;
	p->l4 = ETH_HLEN + hlen;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_UNKEYED;

	if (proto == IPPROTO_TCP) {
		if (ensure(skb, ETH_HLEN + hlen + TCP_HLEN))
			return PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		l4 = data + ETH_HLEN + hlen;
		if ((void *)(l4 + TCP_HLEN) > end)
			return PARSE_MALFORMED;
		p->key.sport = *(__be16 *)l4;
		p->key.dport = *(__be16 *)(l4 + 2);
		p->tcp_flags = l4[TCP_FLAGS_BYTE];
		return PARSE_KEYED;
	}
	if (proto == IPPROTO_UDP) {
		if (ensure(skb, ETH_HLEN + hlen + UDP_HLEN))
			return PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		l4 = data + ETH_HLEN + hlen;
		if ((void *)(l4 + UDP_HLEN) > end)
			return PARSE_MALFORMED;
		p->key.sport = *(__be16 *)l4;
		p->key.dport = *(__be16 *)(l4 + 2);
		return PARSE_KEYED;
	}
	if (proto == IPPROTO_ICMP) {
		if (ensure(skb, ETH_HLEN + hlen + ICMP_ECHO_HLEN))
			return PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		l4 = data + ETH_HLEN + hlen;
		if ((void *)(l4 + ICMP_ECHO_HLEN) > end)
			return PARSE_MALFORMED;
		if (l4[0] == ICMP_DEST_UNREACH || l4[0] == ICMP_TIME_EXCEEDED ||
		    l4[0] == ICMP_PARAMETERPROB)
			return PARSE_ICMP_ERROR;
		if (l4[0] != ICMP_ECHO && l4[0] != ICMP_ECHOREPLY)
			return PARSE_UNKEYED;
		p->key.sport = *(__be16 *)(l4 + 4); /* the echo identifier */
		p->key.dport = 0;
		return PARSE_KEYED;
	}
	return PARSE_UNKEYED;
}

static __always_inline struct flow_action *lookup(struct packet *p)
{
	struct iface_config *iface = bpf_map_lookup_elem(&iface_cfg, &p->ifindex);

	p->key.vrf = iface ? iface->vrf : 0;
	return bpf_map_lookup_elem(&flows, &p->key);
}

static __always_inline int set_addr(struct __sk_buff *skb, __u32 off,
				    __be32 from, __be32 to, __u32 l4_csum, __u64 l4_flags)
{
	if (l4_csum &&
	    bpf_l4_csum_replace(skb, l4_csum, from, to, l4_flags | BPF_F_PSEUDO_HDR | 4))
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 4))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 4, 0) ? -1 : 0;
}

static __always_inline int set_port(struct __sk_buff *skb, __u32 off, __be16 from, __be16 to,
				    __u32 l4_csum, __u64 l4_flags)
{
	if (bpf_l4_csum_replace(skb, l4_csum, from, to, l4_flags | 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 2, 0) ? -1 : 0;
}

/* Rewrite addresses and ports with incremental checksum updates. UDP: a zero
 * checksum (none) stays zero, a result of zero becomes 0xffff
 * (BPF_F_MARK_MANGLED_0). ICMP has no pseudo-header; its "port" is the echo
 * identifier, which either port flag sets. */
static __always_inline int rewrite(struct __sk_buff *skb, struct packet *p, struct flow_action *a)
{
	__u32 flags = a->flags;
	__u32 l4_csum = 0; /* offset of the checksum the pseudo-header feeds; 0: none */
	__u32 port_csum;
	__u64 l4_flags = 0;
	__be16 id, new_id;

	if (p->key.proto == IPPROTO_TCP) {
		l4_csum = p->l4 + 16;
	} else if (p->key.proto == IPPROTO_UDP) {
		l4_csum = p->l4 + 6;
		l4_flags = BPF_F_MARK_MANGLED_0;
	}
	if ((flags & ACT_REWRITE_SRC) && a->new_src != p->src) {
		if (set_addr(skb, IP_SRC_OFF, p->src, a->new_src, l4_csum, l4_flags))
			return -1;
		p->src = a->new_src;
	}
	if ((flags & ACT_REWRITE_DST) && a->new_dst != p->dst) {
		if (set_addr(skb, IP_DST_OFF, p->dst, a->new_dst, l4_csum, l4_flags))
			return -1;
		p->dst = a->new_dst;
	}
	if (p->key.proto == IPPROTO_ICMP) {
		id = new_id = p->key.sport;
		if (flags & ACT_REWRITE_SPORT)
			new_id = a->new_sport;
		if (flags & ACT_REWRITE_DPORT)
			new_id = a->new_dport;
		if (new_id != id && set_port(skb, p->l4 + 4, id, new_id, p->l4 + 2, 0))
			return -1;
		return 0;
	}
	port_csum = l4_csum;
	if ((flags & ACT_REWRITE_SPORT) && a->new_sport != p->key.sport &&
	    set_port(skb, p->l4, p->key.sport, a->new_sport, port_csum, l4_flags))
		return -1;
	if ((flags & ACT_REWRITE_DPORT) && a->new_dport != p->key.dport &&
	    set_port(skb, p->l4 + 2, p->key.dport, a->new_dport, port_csum, l4_flags))
		return -1;
	return 0;
}

static __always_inline int decrement_ttl(struct __sk_buff *skb, __u8 ttl)
{
	__u8 new_ttl = ttl - 1;

	/* ttl is the high byte of the 16-bit word (ttl, protocol) */
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons((__u16)ttl << 8),
				bpf_htons((__u16)new_ttl << 8), 2))
		return -1;
	return bpf_skb_store_bytes(skb, IP_TTL_OFF, &new_ttl, 1, 0) ? -1 : 0;
}

static __always_inline void fill_outer(struct outer *h, __be32 src, __be32 dst, __be16 sport,
				       __be16 dport, __u32 inner_len, __u8 tos)
{
	__u32 total = inner_len + OUTER_LEN;

	/* A GSO packet's lengths are rewritten per segment on output. */
	if (total > 0xffff)
		total = 0xffff;
	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tos = tos;
	h->ip.tot_len = bpf_htons(total);
	h->ip.ttl = OUTER_TTL;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.saddr = src;
	h->ip.daddr = dst;
	h->ip.check = 0;
	h->ip.check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)&h->ip, sizeof(h->ip), 0));
	h->udp.source = sport;
	h->udp.dest = dport;
	h->udp.len = bpf_htons(total - sizeof(struct iphdr));
	h->udp.check = 0; /* allowed for UDP over IPv4; saves a pass over the payload */
}

static __always_inline int encapsulate(struct __sk_buff *skb, struct packet *p,
				       struct flow_action *a)
{
	struct outer h = {};
	__be16 sport = a->encap_sport;

	if (!sport) /* spread flows over ECMP paths like VXLAN does */
		sport = bpf_htons(0xc000 | (bpf_get_hash_recalc(skb) & 0x3fff));
	fill_outer(&h, a->encap_src, a->encap_dst, sport, a->encap_dport, skb->len - ETH_HLEN,
		   p->tos);
	h.encap.flags = ENCAP_FLAGS;
	h.encap.next_protocol = ENCAP_NEXT_PROTO_IPV4;
	h.encap.vni = bpf_htonl(a->encap_vni << 8);
	if (bpf_skb_adjust_room(skb, OUTER_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP))
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), BPF_F_RECOMPUTE_CSUM) ? -1 : 0;
}

/* Send the packet where the FIB says; encapsulated packets are routed by their
 * outer header (and had their inner TTL decremented already). */
static __always_inline int route(struct __sk_buff *skb, struct packet *p, struct flow_action *a,
				 int encapsulated, struct fp_counters *c)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	__u8 macs[2 * ETH_ALEN];
	__u32 lookup_flags = 0;
	long rc;

	fib.family = AF_INET;
	fib.tos = p->tos;
	if (encapsulated) {
		fib.l4_protocol = IPPROTO_UDP;
		fib.ipv4_src = a->encap_src;
		fib.ipv4_dst = a->encap_dst;
	} else {
		fib.l4_protocol = p->key.proto;
		fib.sport = p->key.sport;
		fib.dport = p->key.dport;
		fib.ipv4_src = p->src;
		fib.ipv4_dst = p->dst;
	}
	if (a->next_hop)
		fib.ipv4_dst = a->next_hop;
	fib.ifindex = p->ifindex;
	if (a->out_ifindex) {
		/* An output lookup only considers routes through that interface. */
		fib.ifindex = a->out_ifindex;
		lookup_flags = BPF_FIB_LOOKUP_OUTPUT;
	}
	/* tot_len 0: the kernel checks the skb against the MTU, GSO-aware */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), lookup_flags);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (!encapsulated && decrement_ttl(skb, p->ttl))
			return drop(c, FP_FORWARD_ERRORS);
		COUNT(c, FP_TX_PACKETS);
		COUNT_N(c, FP_TX_BYTES, skb->len);
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			COUNT(c, FP_NO_NEIGHBOUR);
			nh.nh_family = AF_INET;
			nh.ipv4_nh = fib.ipv4_dst;
			return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
		}
		__builtin_memcpy(macs, fib.dmac, ETH_ALEN);
		__builtin_memcpy(macs + ETH_ALEN, fib.smac, ETH_ALEN);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
			return drop(c, FP_FORWARD_ERRORS);
		return bpf_redirect(fib.ifindex, 0);
	}
	/* Not forwarded: a local (or unroutable) destination. The kernel delivers it or
	 * answers; but it cannot honour a rule's own next hop or egress interface. */
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED && !a->next_hop && !a->out_ifindex) {
		COUNT(c, FP_PASSED_TO_HOST);
		return TC_ACT_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) { /* the kernel fragments or sends ICMP */
		COUNT(c, FP_FRAG_NEEDED);
		COUNT(c, FP_PASSED_TO_HOST);
		return TC_ACT_OK;
	}
	return drop(c, FP_FORWARD_ERRORS);
}

static __always_inline int apply(struct __sk_buff *skb, struct packet *p, struct flow_action *a,
				 struct fp_counters *c)
{
	__u32 flags = a->flags;
	__u32 seen;

	COUNT(c, FP_HITS);
	a->last_seen_ns = bpf_ktime_get_ns();
	seen = a->tcp_flags_seen;
	if ((seen & p->tcp_flags) != p->tcp_flags)
		__sync_fetch_and_or(&a->tcp_flags_seen, (__u32)p->tcp_flags);
	if (flags & ACT_COUNT) {
		__sync_fetch_and_add(&a->packets, 1);
		__sync_fetch_and_add(&a->bytes, p->len);
	}
	if ((flags & ACT_DROP) || !(flags & ACT_FORWARD))
		return drop(c, FP_RULE_DROPS);
	if (p->ttl <= 1)
		return drop(c, FP_TTL_EXCEEDED);
	if (rewrite(skb, p, a))
		return drop(c, FP_FORWARD_ERRORS);
	if (flags & ACT_ENCAP) {
		if (decrement_ttl(skb, p->ttl) || encapsulate(skb, p, a))
			return drop(c, FP_FORWARD_ERRORS);
		return route(skb, p, a, 1, c);
	}
	return route(skb, p, a, 0, c);
}

/* Wrap the IPv4 packet in Ethernet/IPv4/UDP/punt header to the slow path. */
static __always_inline int punt(struct __sk_buff *skb, struct packet *p, struct punt_config *cfg,
				struct fp_counters *c)
{
	struct outer h = {};
	struct ethhdr eth = {};
	__u32 mtu = 0;

	if (!cfg->enabled || !cfg->ifindex)
		return drop(c, FP_PUNT_ERRORS);
	if (skb->gso_size) {
		COUNT(c, FP_PUNT_GSO);
		return drop(c, FP_PUNT_ERRORS);
	}
	if (bpf_check_mtu(skb, cfg->ifindex, &mtu, OUTER_LEN, 0)) {
		COUNT(c, FP_PUNT_TOO_BIG);
		return drop(c, FP_PUNT_ERRORS);
	}
	fill_outer(&h, cfg->local_addr, cfg->slowpath_addr, cfg->local_port, cfg->slowpath_port,
		   skb->len - ETH_HLEN, 0);
	h.punt.version = PUNT_VERSION;
	h.punt.kind = PUNT_KIND_MISS;
	h.punt.instance = bpf_htons(cfg->instance);
	h.punt.ifindex = bpf_htonl(p->ifindex);
	__builtin_memcpy(eth.h_dest, cfg->slowpath_mac, ETH_ALEN);
	__builtin_memcpy(eth.h_source, cfg->local_mac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_adjust_room(skb, OUTER_LEN, BPF_ADJ_ROOM_MAC, 0) ||
	    bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), BPF_F_RECOMPUTE_CSUM))
		return drop(c, FP_PUNT_ERRORS);
	COUNT(c, FP_PUNTED);
	return bpf_redirect(cfg->ifindex, 0);
}

static __always_inline int miss(struct __sk_buff *skb, struct packet *p, struct punt_config *cfg,
				struct fp_counters *c)
{
	struct bpf_fib_lookup fib = {};

	COUNT(c, FP_MISSES);
	fib.family = AF_INET;
	fib.tos = p->tos;
	fib.ipv4_src = p->src;
	fib.ipv4_dst = p->dst;
	fib.ifindex = p->ifindex;
	/* NOT_FWDED: local (the unit's own traffic), broadcast, or no route at all */
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH) ==
	    BPF_FIB_LKUP_RET_NOT_FWDED) {
		COUNT(c, FP_PASSED_TO_HOST);
		return TC_ACT_OK;
	}
	return punt(skb, p, cfg, c);
}

/* A checksum over bytes that changed by `diff` (bpf_csum_diff of the old and the new
 * bytes): the incremental update of RFC 1624. */
static __always_inline __be16 csum_update(__be16 check, __s64 diff)
{
	return csum_fold((__s64)(__u16)~check + diff);
}

/* An ICMP error (destination unreachable, time exceeded, parameter problem) about a
 * packet of a flow with rules. The quoted packet went the opposite way, so the error
 * belongs to the flow keyed by the quoted packet reversed (for a quoted echo, by its
 * identifier). That rule's rewrites go to the error's own address when it is the
 * flow's endpoint and, mirrored, to the quoted packet (addresses, ports or echo
 * identifier, and its checksums), then the error is forwarded like the flow's
 * packets: a NAT's inside host gets "port unreachable" or "fragmentation needed"
 * about the packet it sent, as it sent it (RFC 5508). The rule's counters and idle
 * time stay as they are: an error is not traffic of the flow. No such rule, or one
 * that drops or encapsulates: a miss, as any unkeyed packet. */
static __always_inline int icmp_error(struct __sk_buff *skb, struct packet *p,
				      struct punt_config *cfg, struct fp_counters *c)
{
	const __u32 ip_off = p->l4 + ICMP_ERROR_HLEN;
	const __u32 l4_off = ip_off + sizeof(struct iphdr);
	struct iphdr inner, old_inner;
	__be16 quoted[4] __attribute__((aligned(8)));     /* the quoted L4 header's 8 bytes */
	__be16 old_quoted[4] __attribute__((aligned(8)));
	__be16 tcp_check[2] __attribute__((aligned(4)));  /* bytes 16..19 of a quoted TCP header */
	__be16 old_tcp_check[2] __attribute__((aligned(4)));
	struct flow_action *a;
	__be32 flow_src, flow_dst;
	int has_tcp_check = 0;
	__s64 addresses, diff;
	__u32 flags;

	if (bpf_skb_load_bytes(skb, ip_off, &inner, sizeof(inner)) ||
	    bpf_skb_load_bytes(skb, l4_off, quoted, sizeof(quoted)))
		return miss(skb, p, cfg, c);
	if (inner.version != 4 || inner.ihl != 5 ||
	    (inner.frag_off & bpf_htons(IP_OFFSET)))
		return miss(skb, p, cfg, c);
	p->key.src = inner.daddr;
	p->key.dst = inner.saddr;
	p->key.proto = inner.protocol;
	if (inner.protocol == IPPROTO_TCP || inner.protocol == IPPROTO_UDP) {
		p->key.sport = quoted[1];
		p->key.dport = quoted[0];
	} else if (inner.protocol == IPPROTO_ICMP) {
		__u8 type = ((__u8 *)quoted)[0];

		if (type != ICMP_ECHO && type != ICMP_ECHOREPLY)
			return miss(skb, p, cfg, c);
		p->key.sport = quoted[2];
		p->key.dport = 0;
	} else {
		return miss(skb, p, cfg, c);
	}
	a = lookup(p);
	if (!a)
		return miss(skb, p, cfg, c);
	flags = a->flags;
	if ((flags & (ACT_DROP | ACT_ENCAP)) || !(flags & ACT_FORWARD))
		return miss(skb, p, cfg, c);
	if (p->ttl <= 1)
		return drop(c, FP_TTL_EXCEEDED);

	flow_src = p->key.src;
	flow_dst = p->key.dst;
	old_inner = inner;
	__builtin_memcpy(old_quoted, quoted, sizeof(quoted));
	if (inner.protocol == IPPROTO_TCP &&
	    !bpf_skb_load_bytes(skb, l4_off + 16, tcp_check, sizeof(tcp_check))) {
		has_tcp_check = 1;
		__builtin_memcpy(old_tcp_check, tcp_check, sizeof(tcp_check));
	}
	/* The flow's packets leave from new_src:new_sport, so the quoted packet (one of
	 * the opposite direction) went to that address; likewise for the destination. */
	if (flags & ACT_REWRITE_SRC) {
		inner.daddr = a->new_src;
		if (p->src == flow_src && a->new_src != p->src) {
			if (set_addr(skb, IP_SRC_OFF, p->src, a->new_src, 0, 0))
				return drop(c, FP_FORWARD_ERRORS);
			p->src = a->new_src;
		}
	}
	if (flags & ACT_REWRITE_DST) {
		inner.saddr = a->new_dst;
		if (p->dst == flow_dst && a->new_dst != p->dst) {
			if (set_addr(skb, IP_DST_OFF, p->dst, a->new_dst, 0, 0))
				return drop(c, FP_FORWARD_ERRORS);
			p->dst = a->new_dst;
		}
	}
	if (inner.protocol == IPPROTO_ICMP) {
		if (flags & ACT_REWRITE_SPORT)
			quoted[2] = a->new_sport;
		if (flags & ACT_REWRITE_DPORT)
			quoted[2] = a->new_dport;
		diff = bpf_csum_diff((__be32 *)&old_quoted[2], 4, (__be32 *)&quoted[2], 4, 0);
		quoted[1] = csum_update(quoted[1], diff);
	} else {
		if (flags & ACT_REWRITE_SPORT)
			quoted[1] = a->new_sport;
		if (flags & ACT_REWRITE_DPORT)
			quoted[0] = a->new_dport;
		/* TCP and UDP checksums cover the addresses (pseudo-header) and the ports */
		addresses = bpf_csum_diff(&old_inner.saddr, 8, &inner.saddr, 8, 0);
		diff = bpf_csum_diff((__be32 *)old_quoted, 4, (__be32 *)quoted, 4, addresses);
		if (inner.protocol == IPPROTO_UDP && quoted[3]) {
			quoted[3] = csum_update(quoted[3], diff);
			if (!quoted[3])
				quoted[3] = 0xffff;
		}
		if (has_tcp_check)
			tcp_check[0] = csum_update(tcp_check[0], diff);
	}
	inner.check = 0;
	inner.check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)&inner, sizeof(inner), 0));
	/* The error's own checksum covers all it quotes (ICMP has no pseudo-header). */
	diff = bpf_csum_diff((__be32 *)&old_inner, sizeof(inner), (__be32 *)&inner, sizeof(inner), 0);
	diff = bpf_csum_diff((__be32 *)old_quoted, sizeof(quoted), (__be32 *)quoted, sizeof(quoted),
			     diff);
	if (has_tcp_check)
		diff = bpf_csum_diff((__be32 *)old_tcp_check, sizeof(tcp_check),
				     (__be32 *)tcp_check, sizeof(tcp_check), diff);
	if (bpf_skb_store_bytes(skb, ip_off, &inner, sizeof(inner), 0) ||
	    bpf_skb_store_bytes(skb, l4_off, quoted, sizeof(quoted), 0) ||
	    (has_tcp_check &&
	     bpf_skb_store_bytes(skb, l4_off + 16, tcp_check, sizeof(tcp_check), 0)) ||
	    bpf_l4_csum_replace(skb, p->l4 + 2, 0, diff, 0))
		return drop(c, FP_FORWARD_ERRORS);
	COUNT(c, FP_ICMP_ERRORS);
	p->key.proto = IPPROTO_ICMP; /* the FIB routes the error as what it is */
	p->key.sport = 0;
	p->key.dport = 0;
	return route(skb, p, a, 0, c);
}

#define INSTALL_RECORD ((__u32)(sizeof(struct flow_key) + sizeof(struct flow_action)))

/* Put the rules of an INSTALL datagram in the table. Only the slow path this
 * fast path punts to may install, and only for this instance; the counters a
 * rule starts with are the datapath's to set, whatever the datagram says. */
static __always_inline int install_rules(struct __sk_buff *skb, __be32 saddr, __be16 instance,
					 __u32 count, __u16 udp_len, struct punt_config *cfg,
					 struct fp_counters *c)
{
	const __u32 first = ETH_HLEN + OUTER_LEN;
	struct flow_action action;
	struct flow_key key;
	__u32 offset = first;
	__u64 now;
	int i;

	if (saddr != cfg->slowpath_addr || bpf_ntohs(instance) != cfg->instance || count == 0 ||
	    count > INSTALL_MAX_RULES ||
	    udp_len != sizeof(struct udphdr) + sizeof(struct punt_header) + count * INSTALL_RECORD ||
	    skb->len < first + count * INSTALL_RECORD)
		return drop(c, FP_DATAGRAM_ERRORS);
	now = bpf_ktime_get_ns();
	for (i = 0; i < INSTALL_MAX_RULES; i++) {
		if (i >= count)
			break;
		if (bpf_skb_load_bytes(skb, offset, &key, sizeof(key)) ||
		    bpf_skb_load_bytes(skb, offset + sizeof(key), &action, sizeof(action)))
			return drop(c, FP_DATAGRAM_ERRORS);
		action.packets = 0;
		action.bytes = 0;
		action.last_seen_ns = now;
		action.tcp_flags_seen = 0;
		action.reserved = 0;
		if (bpf_map_lookup_elem(&flows, &key)) {
			if (bpf_map_update_elem(&flows, &key, &action, BPF_ANY))
				COUNT(c, FP_DATAGRAM_ERRORS);
			else
				COUNT(c, FP_DATAGRAM_RULES);
		} else if (bpf_map_update_elem(&flows, &key, &action, BPF_ANY)) {
			COUNT(c, FP_DATAGRAM_ERRORS); /* the table is full */
		} else {
			COUNT(c, FP_DATAGRAM_RULES);
			COUNT(c, FP_DATAGRAM_ADDED);
		}
		offset += INSTALL_RECORD;
	}
	return TC_ACT_SHOT; /* consumed, not a drop */
}

static __always_inline int from_punt_link(struct __sk_buff *skb, struct punt_config *cfg,
					  struct fp_counters *c)
{
	struct packet p = {};
	struct flow_action *a;
	struct ethhdr *eth;
	struct outer *o;
	void *data, *end;
	__u32 ifindex;
	int parsed;

	if (ensure(skb, ETH_HLEN + OUTER_LEN))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	o = data + ETH_HLEN;
	if ((void *)(o + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || o->ip.version != 4 || o->ip.ihl != 5 ||
	    o->ip.protocol != IPPROTO_UDP || o->ip.daddr != cfg->local_addr ||
	    (o->ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)) || o->udp.dest != cfg->reinject_port)
		return TC_ACT_OK; /* the unit's own traffic on the punt link */
	if (o->punt.version == PUNT_VERSION && o->punt.kind == PUNT_KIND_INSTALL)
		return install_rules(skb, o->ip.saddr, o->punt.instance, bpf_ntohl(o->punt.ifindex),
				     bpf_ntohs(o->udp.len), cfg, c);
	if (o->punt.version != PUNT_VERSION || o->punt.kind != PUNT_KIND_REINJECT)
		return drop(c, FP_REINJECT_ERRORS);
	ifindex = bpf_ntohl(o->punt.ifindex);
	if (bpf_skb_adjust_room(skb, -OUTER_LEN, BPF_ADJ_ROOM_MAC, 0))
		return drop(c, FP_REINJECT_ERRORS);
	COUNT(c, FP_REINJECTED);

	p.len = skb->len;
	p.ifindex = ifindex;
	parsed = parse(skb, &p);
	if (parsed == PARSE_UNKEYED || parsed == PARSE_ICMP_ERROR)
		return drop(c, FP_REINJECT_MISSES);
	if (parsed != PARSE_KEYED)
		return drop(c, FP_REINJECT_ERRORS);
	a = lookup(&p);
	if (!a)
		return drop(c, FP_REINJECT_MISSES);
	return apply(skb, &p, a, c);
}

SEC("tc")
int fp_ingress(struct __sk_buff *skb)
{
	struct packet p = {};
	struct fp_counters *c;
	struct punt_config *cfg;
	struct flow_action *a;
	__u32 zero = 0;
	int parsed;

	c = bpf_map_lookup_elem(&counters, &zero);
	cfg = bpf_map_lookup_elem(&punt_cfg, &zero);
	if (!c || !cfg)
		return TC_ACT_OK;
	if (cfg->ifindex && skb->ingress_ifindex == cfg->ifindex)
		return from_punt_link(skb, cfg, c);

	COUNT(c, FP_RX_PACKETS);
	COUNT_N(c, FP_RX_BYTES, skb->len);
	p.len = skb->len;
	p.ifindex = skb->ingress_ifindex;
	parsed = parse(skb, &p);
	if (parsed == PARSE_NOT_IPV4) {
		COUNT(c, FP_PASSED_TO_HOST);
		return TC_ACT_OK;
	}
	if (parsed == PARSE_MALFORMED)
		return drop(c, FP_MALFORMED);
	if (parsed == PARSE_KEYED) {
		a = lookup(&p);
		if (a)
			return apply(skb, &p, a, c);
	}
	if (parsed == PARSE_ICMP_ERROR)
		return icmp_error(skb, &p, cfg, c);
	return miss(skb, &p, cfg, c);
}

struct scan_context {
	__u64 now;
	__u64 entries;
	__u64 overflow;
	__u32 max_out;
	__u32 expired;
};

static long scan_one(void *map, struct flow_key *key, struct flow_action *a,
		     struct scan_context *ctx)
{
	__u64 last = a->last_seen_ns;
	__u64 timeout = a->idle_timeout_s;
	__u32 tcp_flags = a->tcp_flags_seen;
	__u32 slot = ctx->expired;

	ctx->entries++;
	if (a->transitory_timeout_s && key->proto == IPPROTO_TCP &&
	    (!(tcp_flags & TCP_ACK) || (tcp_flags & (TCP_FIN | TCP_RST))))
		timeout = a->transitory_timeout_s;
	if (ctx->now <= last || ctx->now - last <= timeout * NSEC_PER_SEC)
		return 0;
	if (slot >= ctx->max_out || bpf_map_update_elem(&scan_keys, &slot, key, BPF_ANY) ||
	    bpf_map_update_elem(&scan_values, &slot, a, BPF_ANY)) {
		ctx->overflow++;
		return 0;
	}
	ctx->expired = slot + 1;
	return 0;
}

/* Never attached: the driver runs it with BPF_PROG_TEST_RUN to count and age the
 * table in the kernel instead of copying every record out. */
SEC("tc")
int fp_scan(struct __sk_buff *skb)
{
	struct scan_context ctx = {};
	struct scan_state *state;
	__u32 zero = 0;

	state = bpf_map_lookup_elem(&scan_state, &zero);
	if (!state)
		return TC_ACT_SHOT;
	ctx.now = state->now_ns;
	ctx.max_out = state->max_out < SCAN_SLOTS ? state->max_out : SCAN_SLOTS;
	bpf_for_each_map_elem(&flows, scan_one, &ctx, 0);
	state->entries = ctx.entries;
	state->expired = ctx.expired;
	state->overflow = ctx.overflow;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
