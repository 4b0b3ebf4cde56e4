/*
 * A stand-in for NVIDIA's NVML (libnvidia-ml.so.1), for tests on machines without a GPU.
 *
 * It is NOT the driver and proves nothing about real GPUs: it lets the executor's NVIDIA
 * backend, nvml-wrapper and the daemon's handling of GPU devices (discovery, UUID binding,
 * MIG, health readings, Xid events, a GPU that vanishes) run in CI against a library that
 * exports the NVML calls they make, with the ABI of nvml-wrapper-sys 0.9.1's bindings.
 * The real check needs a GPU: scripts/gpu-check.sh (exec/examples/gpu_check.rs).
 *
 * The GPUs are described by a state file whose path is compiled in (-DSTANDIN_STATE="..."),
 * so that each test builds its own copy at its own path: two paths are two separate
 * instances in one process (tests run as threads of one process, so an environment variable
 * could not tell them apart). The file is re-read on every call, so a test changes the GPUs
 * by rewriting it (by rename, so that no call reads half a file). One record a line, fields
 * separated by '|' (names contain spaces); '#' starts a comment line:
 *
 *   gpu|UUID|NAME|MEM_TOTAL_MIB|MEM_USED_MIB|TEMP_C|UTIL_PCT|ECC_UNCORRECTED|MIG_ON(0/1)
 *   mig|PARENT_GPU_UUID|MIG_UUID|MEM_TOTAL_MIB
 *   xid|GPU_UUID|CODE
 *
 * A GPU whose line is removed is off the bus: its handle answers NVML_ERROR_GPU_IS_LOST and
 * lookups by its UUID NVML_ERROR_NOT_FOUND. Xid lines are only ever appended: each one is
 * delivered once, in file order, by nvmlEventSetWait_v2 to a set its GPU is registered in,
 * as a critical-Xid event. A file that does not parse makes every call that reads it answer
 * NVML_ERROR_UNKNOWN; a missing file makes nvmlInit_v2 answer NVML_ERROR_DRIVER_NOT_LOADED.
 *
 * What the stand-in assumes of the real library, where the tests depend on it: handles stay
 * valid for the life of the process (here: static slots, one per UUID ever seen); a MIG
 * handle answers UUID, name and memory, but temperature, utilization, ECC, MIG mode and
 * events are the parent GPU's business (NVML_ERROR_NOT_SUPPORTED); a GPU with MIG on reports
 * 7 MIG slots (an A100's or H100's maximum), of which those without an instance answer
 * NVML_ERROR_NOT_FOUND; init and shutdown are counted.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef STANDIN_STATE
#error "compile with -DSTANDIN_STATE='\"/path/to/state\"'"
#endif

#define EXPORT __attribute__((visibility("default")))

/* nvmlReturn_t values (nvml-wrapper-sys bindings.rs). */
typedef unsigned int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define NVML_EVENT_TYPE_XID_CRITICAL 8ULL
#define NVML_TEMPERATURE_GPU 0
#define NVML_MEMORY_ERROR_TYPE_CORRECTED 0
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0
#define NVML_AGGREGATE_ECC 1
/* MIG slots per GPU, as an A100 or H100 reports them. */
#define MIG_SLOTS 7

/* Layouts as in bindings.rs (repr(C) there, so the same as here). */
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

/* A handle is a slot holding a UUID: it stays valid (and names the same GPU) whatever the
 * file says later, as a real handle does. */
#define UUID_LEN 96
struct nvmlDevice_st {
    char uuid[UUID_LEN];
};
typedef struct nvmlDevice_st *nvmlDevice_t;

#define MAX_SETS 32
struct nvmlEventSet_st {
    int in_use;
    unsigned long long types;
    unsigned char registered[64]; /* by handle slot */
};
typedef struct nvmlEventSet_st *nvmlEventSet_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

/* ---- the state file ------------------------------------------------------------------ */

#define MAX_GPUS 16
#define MAX_MIGS 64
#define MAX_XIDS 256
#define NAME_LEN 96

struct gpu {
    char uuid[UUID_LEN], name[NAME_LEN];
    unsigned long long mem_total_mib, mem_used_mib, temp_c, util_pct, ecc, mig_on;
};
struct mig {
    char parent[UUID_LEN], uuid[UUID_LEN];
    unsigned long long mem_total_mib;
};
struct xid {
    char gpu[UUID_LEN];
    unsigned long long code;
};
struct state {
    int ngpu, nmig, nxid;
    struct gpu gpus[MAX_GPUS];
    struct mig migs[MAX_MIGS];
    struct xid xids[MAX_XIDS];
};

/* Everything below is shared by the executor's threads (health polls, the Xid watcher):
 * one lock around all of it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct state st;
static struct nvmlDevice_st slots[64];
static int nslots;
static struct nvmlEventSet_st sets[MAX_SETS];
static int init_count;
static int xids_delivered;

/* Copies a field that must be non-empty and fit. */
static int copy_field(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n == 0 || n >= cap) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* A whole field as an unsigned number (strtoull alone accepts "12abc" and "-1"). */
static int number(const char *s, unsigned long long *out) {
    char *end;
    if (*s < '0' || *s > '9') return -1;
    *out = strtoull(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static struct gpu *find_gpu(struct state *s, const char *uuid) {
    for (int i = 0; i < s->ngpu; i++)
        if (strcmp(s->gpus[i].uuid, uuid) == 0) return &s->gpus[i];
    return NULL;
}

static struct mig *find_mig(struct state *s, const char *uuid) {
    for (int i = 0; i < s->nmig; i++)
        if (strcmp(s->migs[i].uuid, uuid) == 0) return &s->migs[i];
    return NULL;
}

/* One line, already stripped of its newline. 0 on success. */
static int parse_line(struct state *s, char *line) {
    char *f[10];
    int n = 0;
    for (char *p = line;; p++) {
        if (n == 10) return -1;
        f[n++] = p;
        p = strchr(p, '|');
        if (!p) break;
        *p = '\0';
    }
    if (strcmp(f[0], "gpu") == 0 && n == 9) {
        if (s->ngpu == MAX_GPUS) return -1;
        struct gpu *g = &s->gpus[s->ngpu];
        if (copy_field(g->uuid, sizeof g->uuid, f[1]) || copy_field(g->name, sizeof g->name, f[2]) || number(f[3], &g->mem_total_mib) ||
            number(f[4], &g->mem_used_mib) || number(f[5], &g->temp_c) || number(f[6], &g->util_pct) || number(f[7], &g->ecc) ||
            number(f[8], &g->mig_on) || g->mig_on > 1 || g->mem_total_mib == 0)
            return -1;
        s->ngpu++;
        return 0;
    }
    if (strcmp(f[0], "mig") == 0 && n == 4) {
        if (s->nmig == MAX_MIGS) return -1;
        struct mig *m = &s->migs[s->nmig];
        if (copy_field(m->parent, sizeof m->parent, f[1]) || copy_field(m->uuid, sizeof m->uuid, f[2]) || number(f[3], &m->mem_total_mib))
            return -1;
        s->nmig++;
        return 0;
    }
    if (strcmp(f[0], "xid") == 0 && n == 3) {
        if (s->nxid == MAX_XIDS) return -1;
        struct xid *x = &s->xids[s->nxid];
        if (copy_field(x->gpu, sizeof x->gpu, f[1]) || number(f[2], &x->code)) return -1;
        s->nxid++;
        return 0;
    }
    return -1;
}

/* Re-reads the state file into `st`. 0 on success, 1 if the file is missing, -1 if it does
 * not parse (then `st` is left empty rather than half-read). Under `lock`. */
static int load(void) {
    static struct state fresh;
    char line[512];
    FILE *fp = fopen(STANDIN_STATE, "r");
    memset(&st, 0, sizeof st);
    if (!fp) return 1;
    memset(&fresh, 0, sizeof fresh);
    int bad = 0;
    while (!bad && fgets(line, sizeof line, fp)) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(fp))
            bad = 1; /* a line longer than the buffer */
        if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
        if (bad || len == 0 || line[0] == '#') continue;
        bad = parse_line(&fresh, line) != 0;
    }
    if (ferror(fp)) bad = 1;
    fclose(fp);
    /* Every MIG instance and Xid belongs to a GPU the file lists (an Xid of a GPU that has
     * since vanished is kept but never delivered: nothing can be registered for it). UUIDs
     * are unique. */
    for (int i = 0; !bad && i < fresh.nmig; i++) {
        struct gpu *g = find_gpu(&fresh, fresh.migs[i].parent);
        int siblings = 0;
        for (int j = 0; j < fresh.nmig; j++) siblings += strcmp(fresh.migs[j].parent, fresh.migs[i].parent) == 0;
        bad = !g || !g->mig_on || siblings > MIG_SLOTS || find_gpu(&fresh, fresh.migs[i].uuid) || find_mig(&fresh, fresh.migs[i].uuid) != &fresh.migs[i];
    }
    for (int i = 0; !bad && i < fresh.ngpu; i++) bad = find_gpu(&fresh, fresh.gpus[i].uuid) != &fresh.gpus[i];
    if (bad) return -1;
    st = fresh;
    return 0;
}

/* The handle of a UUID: its slot, made on first sight. NULL when the slots are used up. */
static nvmlDevice_t handle_of(const char *uuid) {
    for (int i = 0; i < nslots; i++)
        if (strcmp(slots[i].uuid, uuid) == 0) return &slots[i];
    if (nslots == (int)(sizeof slots / sizeof slots[0])) return NULL;
    strcpy(slots[nslots].uuid, uuid);
    return &slots[nslots++];
}

static int slot_index(nvmlDevice_t d) {
    for (int i = 0; i < nslots; i++)
        if (d == &slots[i]) return i;
    return -1;
}

/* Takes the lock and reads the state; on anything but NVML_SUCCESS the lock is released. */
static nvmlReturn_t begin(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = init_count == 0 ? NVML_ERROR_UNINITIALIZED : load() == 0 ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
    if (r != NVML_SUCCESS) pthread_mutex_unlock(&lock);
    return r;
}

static nvmlReturn_t end(nvmlReturn_t r) {
    pthread_mutex_unlock(&lock);
    return r;
}

/* What a handle names now: exactly one of *g, *m is set on success. Under `lock`. */
static nvmlReturn_t resolve(nvmlDevice_t d, struct gpu **g, struct mig **m) {
    *g = NULL;
    *m = NULL;
    if (slot_index(d) < 0) return NVML_ERROR_INVALID_ARGUMENT;
    *g = find_gpu(&st, d->uuid);
    if (!*g) *m = find_mig(&st, d->uuid);
    /* (A MIG line without its GPU's line is refused by load().) */
    return *g || *m ? NVML_SUCCESS : NVML_ERROR_GPU_IS_LOST;
}

/* resolve() for the calls only a whole GPU answers. */
static nvmlReturn_t resolve_gpu(nvmlDevice_t d, struct gpu **g) {
    struct mig *m;
    nvmlReturn_t r = resolve(d, g, &m);
    return r != NVML_SUCCESS ? r : m ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

static nvmlReturn_t put_string(char *buf, unsigned int len, const char *s) {
    if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return NVML_SUCCESS;
}

/* ---- the NVML calls ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlInit_v2(void) {
    pthread_mutex_lock(&lock);
    int r = load();
    if (r == 0) init_count++;
    return end(r == 0 ? NVML_SUCCESS : r == 1 ? NVML_ERROR_DRIVER_NOT_LOADED : NVML_ERROR_UNKNOWN);
}

/* nvml-wrapper's Drop calls this unconditionally (and panics if the symbol is missing). */
EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return end(NVML_ERROR_UNINITIALIZED);
    init_count--;
    return end(NVML_SUCCESS);
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded (stand-in: no state file)";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    nvmlReturn_t r = begin();
    if (r) return r;
    if (!count) return end(NVML_ERROR_INVALID_ARGUMENT);
    *count = (unsigned int)st.ngpu;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t r = begin();
    if (r) return r;
    if (!device || index >= (unsigned int)st.ngpu) return end(NVML_ERROR_INVALID_ARGUMENT);
    *device = handle_of(st.gpus[index].uuid);
    return end(*device ? NVML_SUCCESS : NVML_ERROR_MEMORY);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    nvmlReturn_t r = begin();
    if (r) return r;
    if (!uuid || !device) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!find_gpu(&st, uuid) && !find_mig(&st, uuid)) return end(NVML_ERROR_NOT_FOUND);
    *device = handle_of(uuid);
    return end(*device ? NVML_SUCCESS : NVML_ERROR_MEMORY);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    struct gpu *g;
    struct mig *m;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve(device, &g, &m))) return end(r);
    return end(put_string(uuid, length, g ? g->uuid : m->uuid));
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    struct gpu *g;
    struct mig *m;
    char mig_name[NAME_LEN + 32];
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve(device, &g, &m))) return end(r);
    if (m) snprintf(mig_name, sizeof mig_name, "%s MIG %llugb", find_gpu(&st, m->parent)->name, m->mem_total_mib / 1024);
    return end(put_string(name, length, g ? g->name : mig_name));
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    struct gpu *g;
    struct mig *m;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve(device, &g, &m))) return end(r);
    if (!memory) return end(NVML_ERROR_INVALID_ARGUMENT);
    /* The real library checks the version the caller stamps on the struct: a wrapper whose
     * layout differs is refused, not fed a misread struct. */
    if (memory->version != NVML_MEMORY_V2_VERSION) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    unsigned long long total = (g ? g->mem_total_mib : m->mem_total_mib) << 20;
    unsigned long long used = g ? g->mem_used_mib << 20 : 0;
    if (used > total) used = total;
    memory->total = total;
    memory->reserved = 0;
    memory->used = used;
    memory->free = total - used;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, unsigned int sensor, unsigned int *temp) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (sensor != NVML_TEMPERATURE_GPU || !temp) return end(NVML_ERROR_INVALID_ARGUMENT);
    *temp = (unsigned int)g->temp_c;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!utilization) return end(NVML_ERROR_INVALID_ARGUMENT);
    utilization->gpu = (unsigned int)g->util_pct;
    utilization->memory = 0;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, unsigned int error_type, unsigned int counter_type, unsigned long long *count) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!count || error_type > NVML_MEMORY_ERROR_TYPE_UNCORRECTED || counter_type > NVML_AGGREGATE_ECC) return end(NVML_ERROR_INVALID_ARGUMENT);
    *count = error_type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED ? g->ecc : 0;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!current || !pending) return end(NVML_ERROR_INVALID_ARGUMENT);
    *current = *pending = (unsigned int)g->mig_on;
    return end(NVML_SUCCESS);
}

/* NVML: "zero if MIG is not supported or enabled". */
EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!count) return end(NVML_ERROR_INVALID_ARGUMENT);
    *count = g->mig_on ? MIG_SLOTS : 0;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig_device) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!mig_device || !g->mig_on || index >= MIG_SLOTS) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int k = 0;
    for (int i = 0; i < st.nmig; i++) {
        if (strcmp(st.migs[i].parent, g->uuid) != 0) continue;
        if (k++ == index) {
            *mig_device = handle_of(st.migs[i].uuid);
            return end(*mig_device ? NVML_SUCCESS : NVML_ERROR_MEMORY);
        }
    }
    return end(NVML_ERROR_NOT_FOUND);
}

EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *types) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (!types) return end(NVML_ERROR_INVALID_ARGUMENT);
    *types = NVML_EVENT_TYPE_XID_CRITICAL;
    return end(NVML_SUCCESS);
}

static int set_ok(nvmlEventSet_t set) {
    return set >= &sets[0] && set < &sets[MAX_SETS] && set->in_use;
}

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    nvmlReturn_t r = begin();
    if (r) return r;
    if (!set) return end(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < MAX_SETS; i++) {
        if (!sets[i].in_use) {
            memset(&sets[i], 0, sizeof sets[i]);
            sets[i].in_use = 1;
            *set = &sets[i];
            return end(NVML_SUCCESS);
        }
    }
    return end(NVML_ERROR_MEMORY);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set) {
    struct gpu *g;
    nvmlReturn_t r = begin();
    if (r) return r;
    if (!set_ok(set)) return end(NVML_ERROR_INVALID_ARGUMENT);
    if ((r = resolve_gpu(device, &g))) return end(r);
    if (types & ~NVML_EVENT_TYPE_XID_CRITICAL) return end(NVML_ERROR_NOT_SUPPORTED);
    set->types |= types;
    set->registered[slot_index(device)] = 1;
    return end(NVML_SUCCESS);
}

/* The next Xid line not yet delivered whose GPU is registered in `set`, or -1. Lines for
 * GPUs the set does not watch are passed over for good (they were not this set's). */
static int next_xid(nvmlEventSet_t set, nvmlEventData_t *data) {
    while (xids_delivered < st.nxid) {
        struct xid *x = &st.xids[xids_delivered++];
        nvmlDevice_t d = NULL;
        for (int i = 0; i < nslots && !d; i++)
            if (strcmp(slots[i].uuid, x->gpu) == 0) d = &slots[i];
        if (!d || !find_gpu(&st, x->gpu) || !set->registered[slot_index(d)] || !(set->types & NVML_EVENT_TYPE_XID_CRITICAL)) continue;
        memset(data, 0, sizeof *data);
        data->device = d;
        data->eventType = NVML_EVENT_TYPE_XID_CRITICAL;
        data->eventData = x->code;
        data->gpuInstanceId = data->computeInstanceId = 0xFFFFFFFFu; /* not a MIG instance's */
        return 0;
    }
    return -1;
}

/* Waits up to `timeout_ms` for an Xid, re-reading the file every few milliseconds. */
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms) {
    struct timespec start, now, nap = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        nvmlReturn_t r = begin();
        if (r) return r;
        if (!set_ok(set) || !data) return end(NVML_ERROR_INVALID_ARGUMENT);
        if (next_xid(set, data) == 0) return end(NVML_SUCCESS);
        end(NVML_SUCCESS);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited_ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000LL;
        if (waited_ms >= (long long)timeout_ms) return NVML_ERROR_TIMEOUT;
        nanosleep(&nap, NULL);
    }
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return end(NVML_ERROR_UNINITIALIZED);
    if (!set_ok(set)) return end(NVML_ERROR_INVALID_ARGUMENT);
    set->in_use = 0;
    return end(NVML_SUCCESS);
}
