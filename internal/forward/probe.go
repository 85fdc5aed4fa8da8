package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// ProbeHTTP is one plain HTTP call of the gateway's status path at addr:
// any HTTP answer says a gateway is behind it (a busy one answers 503, and
// is still a gateway); a closed connection or a timeout says not.
func ProbeHTTP(addr, path string) func(ctx context.Context) error {
	c := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		Proxy:             nil,
	}}
	url := "http://" + addr + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errors.New("no answer in time")
			}
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return nil
	}
}
