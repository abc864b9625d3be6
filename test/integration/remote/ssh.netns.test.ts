// ssh.test.ts again, on the netns test host (the fallback where no Docker engine starts).
import "../../support/onNetnsHost";
import "./ssh.test";
