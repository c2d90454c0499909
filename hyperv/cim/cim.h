/*
 * cim — the CIM/WMI value layer both sides of the WMI interface share: WBEM HRESULTs, method
 * return codes and job states (Windows spelling kept), CIM types and their text forms, object
 * paths, embedded instances (CIM-XML DTD 2.0 as .NET GetText(CimDtd20/WmiDtd20) and PowerShell
 * ConvertTo-CimEmbeddedString emit it, plus tolerant MOF text), the WQL parser with its LIKE
 * matcher, and CIM datetime/interval text over a virtual FILETIME clock.
 *
 * Must not: know any class schema or policy (which classes exist, which properties are allowed,
 * strict or lenient handling of unknown ones — that is the provider's job), touch SQLite, files
 * or the network, read the wall clock or any random source, or hold global mutable state. It is
 * a pure codec over strings; every length it reads is bounded before anything is sized from it.
 *
 * Errors: every fallible call returns 0 or a negative HV_E* code (base.h) and sets hv_errmsg()
 * to "<what>: position N: <cause>" (object paths, WQL) or "embedded instance: line N: <cause>".
 * Positions are 0-based byte offsets into the text the caller passed.
 *
 * Text: all strings are UTF-8. "Case-insensitive" means ASCII case folding, which is what every
 * name and key the Hyper-V classes use needs.
 *
 * Threads: no function keeps state between calls, so any number of threads may call them on
 * different objects. The CIM-XML reader uses libxml2, which before 2.11 wants xmlInitParser()
 * called once by the program before it starts threads.
 *
 * Ownership: every struct returned through an `out` pointer is owned by the caller and freed with
 * the matching *_free(); every `char *` return is malloc'd and freed with free(). The structs are
 * plain data: callers may read every field; only the cim_* functions should grow the arrays.
 */
#ifndef HV_CIM_H
#define HV_CIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

/* ==== WBEM HRESULTs ============================================================================
 * Values checked against Microsoft's WBEMSTATUS (wbemcli.h) / WbemErrorEnum (wbemdisp.h). They
 * are unsigned 32-bit here, as Windows prints them (0x8004xxxx); compare with (uint32_t)hr. */
#define WBEM_S_NO_ERROR 0x00000000u
#define WBEM_E_FAILED 0x80041001u
#define WBEM_E_NOT_FOUND 0x80041002u
#define WBEM_E_ACCESS_DENIED 0x80041003u
#define WBEM_E_TYPE_MISMATCH 0x80041005u
#define WBEM_E_OUT_OF_MEMORY 0x80041006u
#define WBEM_E_INVALID_PARAMETER 0x80041008u
#define WBEM_E_NOT_SUPPORTED 0x8004100Cu
#define WBEM_E_INVALID_NAMESPACE 0x8004100Eu
#define WBEM_E_INVALID_OBJECT 0x8004100Fu
#define WBEM_E_INVALID_CLASS 0x80041010u
#define WBEM_E_INVALID_QUERY 0x80041017u
#define WBEM_E_INVALID_QUERY_TYPE 0x80041018u
#define WBEM_E_ALREADY_EXISTS 0x80041019u
#define WBEM_E_INVALID_SYNTAX 0x80041021u
#define WBEM_E_PROVIDER_NOT_CAPABLE 0x80041024u
#define WBEM_E_INVALID_METHOD 0x8004102Eu
#define WBEM_E_INVALID_METHOD_PARAMETERS 0x8004102Fu
#define WBEM_E_INVALID_OBJECT_PATH 0x8004103Au

/* The constant's name ("WBEM_E_NOT_FOUND"), or NULL for a code not listed above. Static string. */
const char *cim_wbem_name(uint32_t hr);

/* ==== method return values (wmi-backup.md 1.3) ==================================================
 * Family A (CIM-style: CreateSnapshot, DestroySnapshot, ConvertToReferencePoint,
 * CreateReferencePoint, collection services) and family B (Msvm-style: ExportSystemDefinition,
 * ImportSystemDefinition, DestroyReferencePoint, ExportReferencePoint, ModifyDiskMergeSettings,
 * Msvm_ImageManagementService, ...). 0 and 4096 mean the same in both. */
enum cim_rc_family {
	CIM_RC_FAMILY_A,
	CIM_RC_FAMILY_B,
};

enum {
	CIM_RC_COMPLETED = 0,      /* Completed with No Error */
	CIM_RC_JOB_STARTED = 4096, /* Method Parameters Checked - Job Started (Job = job path) */

	CIM_RC_A_NOT_SUPPORTED = 1,
	CIM_RC_A_FAILED = 2,
	CIM_RC_A_TIMEOUT = 3,
	CIM_RC_A_INVALID_PARAMETER = 4,
	CIM_RC_A_INVALID_STATE = 5,
	CIM_RC_A_INVALID_TYPE = 6,

	CIM_RC_B_FAILED = 32768,
	CIM_RC_B_ACCESS_DENIED = 32769,
	CIM_RC_B_NOT_SUPPORTED = 32770,
	CIM_RC_B_STATUS_UNKNOWN = 32771,
	CIM_RC_B_TIMEOUT = 32772,
	CIM_RC_B_INVALID_PARAMETER = 32773,
	CIM_RC_B_SYSTEM_IN_USE = 32774,
	CIM_RC_B_INVALID_STATE = 32775,
	CIM_RC_B_INCORRECT_DATA_TYPE = 32776,
	CIM_RC_B_SYSTEM_NOT_AVAILABLE = 32777,
	CIM_RC_B_OUT_OF_MEMORY = 32778,
	CIM_RC_B_FILE_NOT_FOUND = 32779, /* image service; ImportSystemDefinition: "File in Use" */
	CIM_RC_B_FILE_IN_USE = 32779,
};

/* The documented text for `code` in `family` ("Invalid Parameter", "Method Parameters Checked -
 * Job Started", "DMTF Reserved", "Vendor Specific", "Unknown"). Never NULL; static string. */
const char *cim_rc_text(enum cim_rc_family family, uint32_t code);

/* ==== job states (Msvm_ConcreteJob.JobState, wmi-backup.md 1.2/1.4) ============================*/
enum cim_job_state {
	CIM_JOB_STATE_NEW = 2,
	CIM_JOB_STATE_STARTING = 3,
	CIM_JOB_STATE_RUNNING = 4,
	CIM_JOB_STATE_SUSPENDED = 5,
	CIM_JOB_STATE_SHUTTING_DOWN = 6,
	CIM_JOB_STATE_COMPLETED = 7,
	CIM_JOB_STATE_TERMINATED = 8,
	CIM_JOB_STATE_KILLED = 9,
	CIM_JOB_STATE_EXCEPTION = 10,
	CIM_JOB_STATE_SERVICE = 11,
	CIM_JOB_STATE_QUERY_PENDING = 12,                /* DMTF later; bareos names it */
	CIM_JOB_STATE_COMPLETED_WITH_WARNINGS = 32768,   /* Microsoft sample code only */
};

/* "New", "Running", "Shutting Down", "CompletedWithWarnings", "DMTF Reserved", "Vendor
 * Reserved", "Unknown" (0, 1). Never NULL; static string. */
const char *cim_job_state_text(uint32_t state);
/* 7, 8, 9, 10 and 32768: the states the careful engines stop polling on. */
bool cim_job_state_is_terminal(uint32_t state);
/* 7 and 32768 (a terminal state the Microsoft sample and bareos count as success). */
bool cim_job_state_is_success(uint32_t state);

/* ==== CIM types and value text ================================================================
 * Values travel as text everywhere in this module (CIM-XML <VALUE>, MOF, path keys); these
 * helpers check and convert that text. */
enum cim_type {
	CIM_TYPE_BOOLEAN,
	CIM_TYPE_UINT8,
	CIM_TYPE_UINT16,
	CIM_TYPE_UINT32,
	CIM_TYPE_UINT64,
	CIM_TYPE_SINT8,
	CIM_TYPE_SINT16,
	CIM_TYPE_SINT32,
	CIM_TYPE_SINT64,
	CIM_TYPE_REAL32,
	CIM_TYPE_REAL64,
	CIM_TYPE_STRING,
	CIM_TYPE_DATETIME,
	CIM_TYPE_REFERENCE,
	CIM_TYPE_CHAR16,
};
#define CIM_TYPE_COUNT 15

/* The CIM-XML TYPE attribute value ("uint16", "string", "datetime", "reference", ...); NULL for
 * a value outside the enum. Static string. */
const char *cim_type_name(enum cim_type t);
/* Parses a TYPE name (ASCII case-insensitive). Returns 0 or HV_EINVAL ("unknown CIM type 'x'"). */
int cim_type_parse(const char *name, enum cim_type *out);
/* True for the eight integer types. */
bool cim_type_is_integer(enum cim_type t);

/* Integer text: optional sign, decimal digits or 0x hex. Returns 0, or HV_EINVAL when the text is
 * not an integer or is out of [min, max] for cim_value_sint / [0, max] for cim_value_uint. */
int cim_value_uint(const char *text, uint64_t max, uint64_t *out);
int cim_value_sint(const char *text, int64_t min, int64_t max, int64_t *out);
/* "TRUE"/"FALSE" in any case. Returns 0 or HV_EINVAL. */
int cim_value_bool(const char *text, bool *out);
/* Checks that `text` is a valid value of type `t` (integer range, boolean word, real, one
 * character for char16, CIM datetime or interval, parsable object path for reference). Returns 0
 * or HV_EINVAL with "value 'x' is not a valid uint8". */
int cim_value_check(enum cim_type t, const char *text);

/* ==== object paths ============================================================================
 * Shapes accepted by cim_path_parse:
 *   \\HOST\root\virtualization\v2:Class.K1="v",K2=3   full path (also \\.\ and //HOST/ns/...:)
 *   root\virtualization\v2:Class.K="v"                 namespace path on the local host
 *   Class.K="v",K2=3                                   relative path (__RELPATH)
 *   Class=@                                            singleton
 *   Class="v"                                          the single key, name not given
 *   Class                                              a class (schema queries)
 * Values: "double" or 'single' quoted, with WMI's C-like escapes \\ \" \' (any other escape is
 * refused: a backslash must be doubled); unquoted: integers (decimal, -, 0x hex) and TRUE/FALSE.
 * No white space outside quotes (WMI Object Path Requirements). At most CIM_PATH_MAX bytes. */
#define CIM_PATH_MAX (64u * 1024u)

struct cim_key {
	char *name;  /* "" for the unnamed single key of `Class="v"` */
	char *value; /* unescaped text */
	bool quoted; /* string (quoted) or numeric/boolean (unquoted) */
};

struct cim_path {
	char *host;       /* "HOST", "." or NULL when the text named no host */
	char *ns;         /* "root\virtualization\v2" (backslashes) or NULL */
	char *class_name;
	bool singleton;   /* Class=@ */
	size_t nkeys;
	struct cim_key *keys; /* in the order parsed / added */
};

/* Parses `text` (NUL-terminated). On success *out is a new path (free with cim_path_free). On
 * failure returns HV_EINVAL with "object path: position N: <cause>" and leaves *out NULL. */
int cim_path_parse(const char *text, struct cim_path **out);
/* Same over `len` bytes (no NUL needed); *err_pos (may be NULL) receives N on failure. */
int cim_path_parse_ex(const char *text, size_t len, struct cim_path **out, size_t *err_pos);
/* A new key-less path of `class_name` (not validated beyond non-empty). Free with cim_path_free. */
int cim_path_new(const char *class_name, struct cim_path **out);
/* Appends a key (strings copied). Returns 0, HV_EINVAL (duplicate name) or HV_ENOMEM. */
int cim_path_add_key(struct cim_path *p, const char *name, const char *value, bool quoted);
/* Deep copy; NULL on allocation failure. Free with cim_path_free. */
struct cim_path *cim_path_dup(const struct cim_path *p);
void cim_path_free(struct cim_path *p);

/* Canonical __RELPATH: `Class.Key1="v",Key2=3` with keys sorted case-insensitively by name,
 * string values re-escaped; `Class=@`, `Class="v"`, `Class`. malloc'd (caller frees), NULL on
 * allocation failure. */
char *cim_path_format_rel(const struct cim_path *p);
/* `\\HOST\NS:` + relpath. A non-NULL `host` / `ns` overrides the path's own; a NULL one falls
 * back to the path's, then to "." / "root\virtualization\v2". malloc'd (caller frees), NULL on
 * allocation failure. */
char *cim_path_format_full(const struct cim_path *p, const char *host, const char *ns);
/* Escapes a value for use inside "..." in a path or a WQL string (\ -> \\, " -> \"). malloc'd. */
char *cim_path_escape(const char *value);

/* WMI path identity: class and key names case-insensitive, key order irrelevant, key values
 * compared case-insensitively (integers numerically), host/namespace only when both sides give
 * them ("." matches any host). */
bool cim_path_equal(const struct cim_path *a, const struct cim_path *b);
/* Parses both texts and compares them; false when either does not parse (hv_errmsg says why). */
bool cim_path_text_equal(const char *a, const char *b);
/* The value of key `name` (case-insensitive), or NULL. Borrowed: valid while `p` lives. */
const char *cim_path_key(const struct cim_path *p, const char *name);

/* ==== embedded instances =======================================================================
 * cim_instance_parse accepts, after optional white space:
 *  - CIM-XML DTD 2.0: root <INSTANCE CLASSNAME="X"> holding <PROPERTY NAME TYPE>[<VALUE>],
 *    <PROPERTY.ARRAY NAME TYPE>[<VALUE.ARRAY><VALUE>...], <PROPERTY.REFERENCE NAME>
 *    [<VALUE.REFERENCE>(INSTANCEPATH | LOCALINSTANCEPATH | INSTANCENAME | CLASSPATH |
 *    LOCALCLASSPATH | CLASSNAME)] rendered to path text; QUALIFIERs ignored; an <?xml?>
 *    declaration; the whole wrapped in <VALUE> (as an element, as escaped text or as CDATA).
 *    No DOCTYPE (so no entities beyond the five predefined and character references), no
 *    network, no entity expansion.
 *  - MOF text: [qualifiers] instance of X [as $a] { Prop = 1; S = "a\"b" "c"; A = {1, 2}; N =
 *    NULL; }; with // and block comments. MOF carries no types: integers become sint64 (or
 *    uint64 above INT64_MAX), reals real64, quoted text string, TRUE/FALSE boolean, NULL and {}
 *    string, and type_inferred is set so the provider coerces them by its schema.
 * At most CIM_INSTANCE_MAX bytes; no NUL bytes; MOF text must be UTF-8 (XML text is decoded
 * from its declared encoding); property names unique (case-insensitive). */
#define CIM_INSTANCE_MAX (1024u * 1024u)

struct cim_prop {
	char *name;
	enum cim_type type;
	bool is_array;
	bool is_null;       /* no value (scalar) / no array at all; nvalues is 0 then */
	bool type_inferred; /* MOF: type guessed from the literal */
	size_t nvalues;     /* scalar: 1 unless is_null; array: element count (may be 0) */
	char **values;      /* text form, one per element; reference: path text */
};

struct cim_instance {
	char *class_name;
	size_t nprops;
	struct cim_prop *props; /* in document order; iterate props[0..nprops) */
};

/* Parses `len` bytes of `text`. On success *out is a new instance (free with cim_instance_free);
 * on failure returns HV_EINVAL ("embedded instance: line N: <cause>") or HV_ENOMEM and leaves
 * *out NULL. */
int cim_instance_parse(const char *text, size_t len, struct cim_instance **out);
/* A new property-less instance of `class_name`. Free with cim_instance_free. */
int cim_instance_new(const char *class_name, struct cim_instance **out);
/* Sets scalar property `name` (replacing one of the same name, any case): `value` NULL = NULL
 * value. Strings are copied. Returns 0, HV_EINVAL (empty name) or HV_ENOMEM. */
int cim_instance_set(struct cim_instance *inst, const char *name, enum cim_type type,
		     const char *value);
/* Sets array property `name` to copies of values[0..n); values NULL with n 0 = NULL array. */
int cim_instance_set_array(struct cim_instance *inst, const char *name, enum cim_type type,
			   const char *const *values, size_t n);
/* Case-insensitive lookup; NULL when absent. Borrowed from `inst`. */
const struct cim_prop *cim_instance_prop(const struct cim_instance *inst, const char *name);
/* The text of scalar property `name`, or NULL when absent, NULL-valued or an array. Borrowed. */
const char *cim_instance_get(const struct cim_instance *inst, const char *name);
/* CIM-XML DTD 2.0 text of the instance, as GetText(CimDtd20) shapes it (one line, no
 * declaration; references as INSTANCEPATH / LOCALINSTANCEPATH / INSTANCENAME or the CLASS*
 * forms). malloc'd (caller frees); NULL with hv_errmsg naming the property when a reference
 * value does not parse as a path, a reference is an array (DTD 2.0 has no PROPERTY.REFARRAY), a
 * text holds what XML 1.0 cannot carry (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF, broken
 * UTF-8), or on ENOMEM. */
char *cim_instance_to_xml(const struct cim_instance *inst);
void cim_instance_free(struct cim_instance *inst);

/* ==== WQL =====================================================================================
 * Grammar (keywords and names case-insensitive):
 *   SELECT * | prop [, prop ...] FROM Class [WHERE expr]
 *     expr    := and (OR and)* ; and := unary (AND unary)* ; unary := NOT unary | primary
 *     primary := ( expr ) | prop op lit | lit op prop | prop LIKE 'pattern'
 *              | prop IS [NOT] NULL
 *     op      := = | <> | != | < | > | <= | >=
 *     lit     := 'str' | "str" | integer (decimal, -, 0x hex) | real | TRUE | FALSE | NULL
 *   ASSOCIATORS OF {path} [WHERE AssocClass = C ClassDefsOnly KeysOnly RequiredAssocQualifier = Q
 *                          RequiredQualifier = Q ResultClass = C ResultRole = R Role = R
 *                          SchemaOnly]     (any order, each at most once, no AND)
 *   REFERENCES OF {path}  [WHERE ClassDefsOnly KeysOnly RequiredQualifier = Q ResultClass = C
 *                          Role = R SchemaOnly]
 * Normalisation: `lit op prop` becomes `prop op' lit` (op mirrored); `prop = NULL` becomes
 * IS NULL and `prop <> NULL` IS NOT NULL. String escapes are WMI's (Microsoft KB 242507: the
 * backslash escapes as in C): \\ \" \' ; any other escape, and SQL-style doubled quotes ('it''s'),
 * are errors. ISA, event queries (WITHIN, GROUP, HAVING) and property-to-property comparisons
 * are refused as not supported. Bounds: WQL_MAX_LEN bytes, WQL_MAX_DEPTH nested parentheses/NOTs,
 * WQL_MAX_NODES expression nodes (so the AST depth never exceeds WQL_MAX_NODES). */
#define WQL_MAX_LEN (64u * 1024u)
#define WQL_MAX_DEPTH 64
#define WQL_MAX_NODES 1024

enum wql_kind {
	WQL_SELECT,
	WQL_ASSOCIATORS,
	WQL_REFERENCES,
};

enum wql_op {
	WQL_OP_EQ,
	WQL_OP_NE,
	WQL_OP_LT,
	WQL_OP_GT,
	WQL_OP_LE,
	WQL_OP_GE,
};

enum wql_lit_kind {
	WQL_LIT_STRING, /* s */
	WQL_LIT_INT,    /* i (INT64_MIN..INT64_MAX) */
	WQL_LIT_UINT,   /* u (INT64_MAX+1..UINT64_MAX only) */
	WQL_LIT_REAL,   /* r */
	WQL_LIT_BOOL,   /* b */
	WQL_LIT_NULL,
};

struct wql_literal {
	enum wql_lit_kind kind;
	char *s; /* unescaped string, owned; NULL for other kinds */
	int64_t i;
	uint64_t u;
	double r;
	bool b;
};

enum wql_expr_kind {
	WQL_EXPR_AND,       /* left AND right */
	WQL_EXPR_OR,        /* left OR right */
	WQL_EXPR_NOT,       /* NOT left */
	WQL_EXPR_CMP,       /* prop op lit (lit never NULL) */
	WQL_EXPR_LIKE,      /* prop LIKE lit.s (a pattern wql_like_check accepts) */
	WQL_EXPR_ISNULL,    /* prop IS NULL */
	WQL_EXPR_ISNOTNULL, /* prop IS NOT NULL */
};

struct wql_expr {
	enum wql_expr_kind kind;
	struct wql_expr *left, *right; /* AND/OR: both; NOT: left */
	char *prop;                    /* CMP/LIKE/ISNULL/ISNOTNULL: name as written */
	enum wql_op op;                /* CMP */
	struct wql_literal lit;        /* CMP/LIKE */
	size_t pos;                    /* offset of the node's first token (for translator errors) */
};

struct wql_query {
	enum wql_kind kind;
	/* SELECT */
	bool select_all;    /* SELECT * */
	size_t nprops;      /* SELECT a, b: the names as written */
	char **props;
	char *class_name;   /* FROM class */
	size_t class_pos;
	struct wql_expr *where; /* NULL when there is no WHERE */
	/* ASSOCIATORS OF / REFERENCES OF */
	char *object_text;        /* the text between the braces, surrounding blanks trimmed */
	struct cim_path *object;  /* object_text parsed */
	char *result_class, *assoc_class, *role, *result_role, *required_qualifier,
		*required_assoc_qualifier; /* NULL when not given */
	bool class_defs_only, keys_only, schema_only;
};

/* Parses `text`. On success *out is a new query (free with wql_query_free). On failure returns
 * HV_EINVAL ("WQL: position N: <what was expected/found>") or HV_ENOMEM, *out NULL. */
int wql_parse(const char *text, struct wql_query **out);
/* Same; *err_pos (may be NULL) receives N on failure. */
int wql_parse_ex(const char *text, struct wql_query **out, size_t *err_pos);
void wql_query_free(struct wql_query *q);
/* "=", "<>", "<", ">", "<=", ">=". Static string. */
const char *wql_op_text(enum wql_op op);

/* WQL LIKE, ASCII case-insensitive, by character (UTF-8 sequences count as one): % any run,
 * _ one character, [abc] set, [a-z] range, [^abc] negated set ([%] [_] [[] match literally).
 * A '[' without its ']' matches itself. O(len(s) * len(pattern)) time, no allocation. */
bool wql_like_match(const char *s, const char *pattern);
/* Checks a LIKE pattern: 0, or HV_EINVAL with *err_pos (may be NULL) at an unterminated '['. */
int wql_like_check(const char *pattern, size_t *err_pos);

/* ==== datetimes ===============================================================================
 * The virtual clock counts FILETIME ticks: 100 ns since 1601-01-01 00:00:00 UTC, proleptic
 * Gregorian, no leap seconds. Formatting never reads the wall clock. */
#define CIM_DATETIME_LEN 25 /* text length; buffers are CIM_DATETIME_LEN + 1 */
#define CIM_TICKS_PER_SECOND 10000000ull
#define CIM_FILETIME_UNIX_EPOCH 116444736000000000ull /* 1970-01-01 */

/* "yyyymmddHHMMSS.mmmmmm+000" (UTC; ticks below 1 us truncated). Returns 0, or HV_EINVAL when the
 * year would exceed 9999 (out is then ""). */
int cim_datetime_format(uint64_t filetime, char out[CIM_DATETIME_LEN + 1]);
/* Parses a timestamp with any UTC offset (+/-UUU minutes) back to UTC ticks. Returns 0 or
 * HV_EINVAL (wrong length or layout, field out of range, wildcard '*' fields, before 1601). */
int cim_datetime_parse(const char *text, uint64_t *filetime);
/* "ddddddddHHMMSS.mmmmmm:000"; 5 minutes -> "00000000000500.000000:000". Every uint64 fits. */
void cim_interval_format(uint64_t ticks, char out[CIM_DATETIME_LEN + 1]);
/* Parses an interval to ticks. Returns 0 or HV_EINVAL. */
int cim_interval_parse(const char *text, uint64_t *ticks);

#endif
