package gateway

import "testing"

func TestConfigURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoint, want string
	}{
		{"contoso.configuration.azure-api.net", "https://contoso.configuration.azure-api.net/configuration"},
		{"standin-config:8443", "https://standin-config:8443/configuration"},
		{"https://standin-config:8443/", "https://standin-config:8443/configuration"},
		{"http://standin-config:8080", "http://standin-config:8080/configuration"},
		{" contoso.management.azure-api.net/subscriptions/x ", "https://contoso.management.azure-api.net/subscriptions/x/configuration"},
		{"https://user:pw@host?q=1", "https://host/configuration"},
		{"[::1]:8443", "https://[::1]:8443/configuration"},
	}
	for _, tc := range tests {
		u, err := configURL(tc.endpoint)
		if err != nil {
			t.Errorf("configURL(%q) = %v", tc.endpoint, err)
			continue
		}
		if u.String() != tc.want {
			t.Errorf("configURL(%q) = %q, want %q", tc.endpoint, u, tc.want)
		}
	}
	for _, bad := range []string{"ftp://host", "https://", "://x"} {
		if _, err := configURL(bad); err == nil {
			t.Errorf("configURL(%q) accepted a bad endpoint", bad)
		}
	}
}
