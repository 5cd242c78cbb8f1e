package investigate

import (
	"fmt"
	"time"
)

const dbHost = "orders-db-7c41e2.cq8zk1x0.us-east-1.rds.amazonaws.com"
const dbGroup = "/aws/rds/instance/orders-db-7c41e2/postgresql"

// bookingService writes traces of "booking" (ECS tasks, a Postgres pool)
// over [from, to). With exhaustion set, from onset on 40% of requests fail
// the way a database out of connection slots makes them fail, surviving
// requests wait ~4 s for a connection, and tasks scale out from 3 to 6.
func (w *world) bookingService(from, to time.Time, tasks int, exhaustion bool, onset time.Time) {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	res := func(i int) map[string]string {
		return map[string]string{
			"service.version":         "2.3.0",
			"cloud.platform":          "aws_ecs",
			"cloud.availability_zone": zones[i%3],
			"aws.ecs.task.arn":        fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/booking/%032x", i+1),
		}
	}
	db := func(extra map[string]string) map[string]string {
		m := map[string]string{"db.system.name": "postgresql", "server.address": dbHost, "db.namespace": "bookingdb"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for t := from; t.Before(to); t = t.Add(2500 * time.Millisecond) {
		task := w.rng.IntN(tasks)
		r := res(task)
		tr := w.id()
		root := w.id()
		name := "POST /:endpoint"
		if w.rng.IntN(3) == 0 {
			name = "GET /:endpoint"
		}
		rootDur := time.Duration(40+w.rng.IntN(40)) * time.Millisecond
		rootErr := ""
		pool, conn := w.id(), w.id()
		poolDur := time.Duration(1+w.rng.IntN(3)) * time.Millisecond
		poolErr, connErr := "", ""
		withConn := true
		if exhaustion && !t.Before(onset) {
			rootDur = time.Duration(3500+w.rng.IntN(1000)) * time.Millisecond
			poolDur = rootDur - 50*time.Millisecond
			if w.rng.Float64() < 0.4 {
				switch x := w.rng.Float64(); {
				case x < 0.35:
					connErr = "sorry, too many clients already"
				case x < 0.65:
					connErr = "remaining connection slots are reserved for non-replication superuser and rds_reserved connections"
				default:
					poolErr = "timeout exceeded when trying to connect"
					poolDur = 30*time.Second + time.Duration(w.rng.IntN(30))*time.Millisecond
					rootDur = poolDur + 20*time.Millisecond
					withConn = false
				}
				if connErr != "" {
					poolErr = connErr
				}
				rootErr = poolErr
			}
		} else if w.rng.Float64() < w.noise {
			rootErr = fmt.Sprintf("client closed request %d", w.rng.IntN(100000))
		}
		w.spans = append(w.spans, sp{trace: tr, id: root, service: "booking", res: r, name: name, start: t, dur: rootDur, errMsg: rootErr,
			attrs: map[string]string{"http.request.method": name[:4], "http.route": "/:endpoint"}})
		w.spans = append(w.spans, sp{trace: tr, id: pool, parent: root, service: "booking", res: r, name: "pg-pool.connect", start: t.Add(time.Millisecond), dur: poolDur, errMsg: poolErr})
		if withConn {
			w.spans = append(w.spans, sp{trace: tr, id: conn, parent: pool, service: "booking", res: r, name: "pg.connect", start: t.Add(poolDur - time.Millisecond), dur: time.Millisecond, errMsg: connErr, attrs: db(nil)})
		}
		if rootErr == "" {
			w.spans = append(w.spans, sp{trace: tr, id: w.id(), parent: root, service: "booking", res: r, name: "pg.query", start: t.Add(poolDur + 2*time.Millisecond), dur: time.Duration(5+w.rng.IntN(10)) * time.Millisecond, attrs: db(map[string]string{"db.operation.name": "SELECT"})})
		}
	}
}

// frontDoor writes a healthy Lambda function's traces, for noise.
func (w *world) frontDoor(from, to time.Time) {
	for t := from; t.Before(to); t = t.Add(5 * time.Second) {
		tr := w.id()
		inst := fmt.Sprintf("2026/11/28/[$LATEST]%08x", w.rng.IntN(4))
		w.spans = append(w.spans, sp{trace: tr, id: w.id(), service: "front-door", res: map[string]string{"cloud.platform": "aws_lambda", "faas.instance": inst, "service.version": "7"},
			name: "GET /", start: t, dur: time.Duration(10+w.rng.IntN(20)) * time.Millisecond})
	}
}

// dbLogs writes the database's log lines; with exhaustion, FATAL lines
// from onset on.
func (w *world) dbLogs(from, to time.Time, exhaustion bool, onset time.Time) {
	line := func(t time.Time, sev, msg string) {
		w.logs = append(w.logs, logLine{t: t, service: "orders-db-7c41e2", group: dbGroup,
			body: fmt.Sprintf("%s UTC:10.0.1.%d(%d):app@bookingdb:[%d]:%s:  %s", t.UTC().Format("2006-01-02 15:04:05"), w.rng.IntN(250), 30000+w.rng.IntN(30000), 1000+w.rng.IntN(9000), sev, msg)})
	}
	for t := from; t.Before(to); t = t.Add(10 * time.Second) {
		line(t, "LOG", fmt.Sprintf("connection received: host=10.0.2.%d port=%d", w.rng.IntN(250), 40000+w.rng.IntN(20000)))
		if w.rng.IntN(6) == 0 {
			line(t.Add(time.Second), "LOG", fmt.Sprintf("checkpoint complete: wrote %d buffers (%.1f%%)", w.rng.IntN(900), w.rng.Float64()*5))
		}
		if exhaustion && !t.Before(onset) {
			line(t.Add(2*time.Second), "FATAL", "sorry, too many clients already")
			line(t.Add(3*time.Second), "FATAL", "remaining connection slots are reserved for non-replication superuser and rds_reserved connections")
		}
	}
	if exhaustion {
		for i := 0; i < 4; i++ {
			line(onset.Add(time.Duration(i)*time.Minute), "FATAL", "the database system is in recovery mode")
		}
	}
}

func dbMetrics(from, to time.Time, exhaustion bool, onset time.Time) *fakeMetrics {
	conns := Series{Labels: map[string]string{"__name__": "aws_rds_database_connections_sum", "dimension_DBInstanceIdentifier": "orders-db-7c41e2"}}
	cpu := Series{Labels: map[string]string{"__name__": "aws_rds_cpuutilization_average", "dimension_DBInstanceIdentifier": "orders-db-7c41e2"}}
	other := Series{Labels: map[string]string{"__name__": "aws_lambda_invocations_sum", "dimension_FunctionName": "front-door"}}
	i := 0
	for t := from; !t.After(to); t = t.Add(time.Minute) {
		c := 12.0 + float64(i%4)
		if exhaustion && !t.Before(onset) {
			c = 40
		}
		conns.Points = append(conns.Points, Point{t, c})
		cpu.Points = append(cpu.Points, Point{t, 20 + float64(i%3)})
		other.Points = append(other.Points, Point{t, 100 + float64(i%5)})
		i++
	}
	return &fakeMetrics{series: []Series{conns, cpu, other}}
}

// paymentsDeploy writes "payments" traces: three tasks on 1.4.2; with
// deploy set, from onset on the zone-c task is replaced by one on 1.5.0
// whose handler throws on 60% of requests.
func (w *world) paymentsDeploy(from, to time.Time, deploy bool, onset time.Time) {
	zones := []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}
	for t := from; t.Before(to); t = t.Add(2 * time.Second) {
		task := w.rng.IntN(3)
		ver, arn := "1.4.2", fmt.Sprintf("arn:aws:ecs:eu-west-1:999:task/pay/%d", task)
		bad := deploy && task == 2 && !t.Before(onset)
		if bad {
			ver, arn = "1.5.0", "arn:aws:ecs:eu-west-1:999:task/pay/new"
		}
		r := map[string]string{"service.version": ver, "cloud.availability_zone": zones[task], "aws.ecs.task.arn": arn}
		tr, root := w.id(), w.id()
		msg := ""
		if bad && w.rng.Float64() < 0.6 {
			msg = fmt.Sprintf("NullPointerException in PaymentHandler.charge (order %d)", w.rng.IntN(1e6))
		} else if w.rng.Float64() < 0.003 {
			msg = "card declined"
		}
		w.spans = append(w.spans, sp{trace: tr, id: root, service: "payments", res: r, name: "POST /charge", start: t, dur: time.Duration(20+w.rng.IntN(20)) * time.Millisecond, errMsg: msg})
		w.spans = append(w.spans, sp{trace: tr, id: w.id(), parent: root, service: "payments", res: r, name: "SELECT payments", start: t.Add(2 * time.Millisecond), dur: 4 * time.Millisecond,
			attrs: map[string]string{"db.system.name": "postgresql", "server.address": "payments-db.internal", "db.namespace": "pay"}})
	}
}

// gatewayThrottled writes "gateway" traces whose calls to a function are
// throttled from onset on (when throttled is set).
func (w *world) gatewayThrottled(from, to time.Time, throttled bool, onset time.Time) {
	r := map[string]string{"cloud.platform": "aws_ecs", "service.version": "3.1"}
	for t := from; t.Before(to); t = t.Add(3 * time.Second) {
		tr, root := w.id(), w.id()
		msg := ""
		if throttled && !t.Before(onset) && w.rng.Float64() < 0.5 {
			msg = fmt.Sprintf("TooManyRequestsException: Rate exceeded (request id %08x-aa)", w.rng.Uint32())
		}
		w.spans = append(w.spans, sp{trace: tr, id: root, service: "gateway", res: r, name: "POST /notify", start: t, dur: 30 * time.Millisecond, errMsg: msg})
		w.spans = append(w.spans, sp{trace: tr, id: w.id(), parent: root, service: "gateway", res: r, name: "Lambda.Invoke", start: t.Add(time.Millisecond), dur: 28 * time.Millisecond, errMsg: msg,
			attrs: map[string]string{"rpc.system": "aws-api", "faas.invoked_name": "notify-fn", "server.address": "lambda.us-east-1.amazonaws.com"}})
	}
}
